"""Ops that move, select or combine elements: their backward routes gradients back."""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result


def reshape(a, shape) -> Variable:
    a = as_variable(a)
    return result(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def permute(a, axes) -> Variable:
    """``permute_dimensions``: numpy transpose with all axes given (batch included)."""
    a = as_variable(a)
    axes = tuple(int(x) for x in axes)
    inverse = tuple(np.argsort(axes))
    return result(a.data.transpose(axes), (a,), lambda g: (g.transpose(inverse),))


def expand_dims(a, axis=-1) -> Variable:
    a = as_variable(a)
    return result(np.expand_dims(a.data, axis), (a,), lambda g: (g.reshape(a.shape),))


def squeeze(a, axis=-1) -> Variable:
    a = as_variable(a)
    return result(np.squeeze(a.data, axis), (a,), lambda g: (g.reshape(a.shape),))


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items)


def getitem(a, index) -> Variable:
    """``a[index]`` for slices, integers and integer arrays; repeated picks accumulate."""
    a = as_variable(a)
    out = a.data[index]
    basic = _is_basic_index(index)

    def backward(g):
        full = np.zeros_like(a.data, dtype=g.dtype)
        if basic:
            full[index] = g
        else:
            np.add.at(full, index, g)
        return (full,)
    return result(np.array(out) if np.isscalar(out) else out, (a,), backward)


def concatenate(tensors, axis=-1) -> Variable:
    tensors = [as_variable(t) for t in tensors]
    out = np.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return result(out, tuple(tensors), lambda g: tuple(np.split(g, bounds, axis=axis)))


def stack(tensors, axis=0) -> Variable:
    tensors = [as_variable(t) for t in tensors]
    out = np.stack([t.data for t in tensors], axis=axis)
    return result(out, tuple(tensors),
                  lambda g: tuple(np.moveaxis(g, axis, 0)))


def gather(a, indices) -> Variable:
    """Rows of ``a`` picked by integer ``indices`` along the first axis (Keras ``gather``)."""
    a = as_variable(a)
    idx = np.asarray(indices.data if isinstance(indices, Variable) else indices)
    if not np.issubdtype(idx.dtype, np.integer):
        if not np.all(np.equal(np.mod(idx, 1), 0)):
            raise ValueError("gather indices must be integers")
        idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -a.shape[0] or idx.max() >= a.shape[0]):
        raise ValueError(f"gather index out of range for axis 0 of size {a.shape[0]}")

    def backward(g):
        full = np.zeros(a.shape, dtype=g.dtype)
        np.add.at(full, idx, g)
        return (full,)
    return result(a.data[idx], (a,), backward)


def one_hot(indices, num_classes) -> Variable:
    """One-hot encoding on a new last axis; integer-valued, so it has no gradient."""
    idx = np.asarray(indices.data if isinstance(indices, Variable) else indices).astype(np.int64)
    n = int(num_classes)
    out = np.zeros(idx.shape + (n,), dtype=np.float32)
    valid = (idx >= 0) & (idx < n)          # out-of-range ids give a zero row, as TensorFlow
    np.put_along_axis(out, np.where(valid, idx, 0)[..., None], valid[..., None].astype(np.float32),
                      axis=-1)
    return Variable(out)


def pad(a, widths) -> Variable:
    """Zero padding; ``widths`` is numpy's per-axis ``((before, after), ...)``."""
    a = as_variable(a)
    slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, a.shape))
    return result(np.pad(a.data, widths), (a,), lambda g: (g[slices],))


def cast(a, dtype) -> Variable:
    a = as_variable(a)
    return result(a.data.astype(dtype), (a,), lambda g: (g.astype(a.dtype),))
