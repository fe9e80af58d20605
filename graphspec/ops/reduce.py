"""Reductions over axes: sum, mean, max, min (Keras ``axis``/``keepdims`` semantics)."""
from __future__ import annotations

import math

import numpy as np

from ..autodiff.engine import Variable, as_variable, result


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"axis {a} is out of range for a rank-{ndim} tensor")
    return tuple(sorted(int(a) % ndim for a in axes))


def _expand(g, axes, keepdims):
    return g if keepdims else np.expand_dims(g, axes)


def sum_(a, axis=None, keepdims=False) -> Variable:
    a = as_variable(a)
    axes = _axes(axis, a.data.ndim)
    out = a.data.sum(axis=axes, keepdims=keepdims)
    return result(out, (a,),
                  lambda g: (np.broadcast_to(_expand(g, axes, keepdims), a.shape),))


def mean(a, axis=None, keepdims=False) -> Variable:
    a = as_variable(a)
    axes = _axes(axis, a.data.ndim)
    shape = a.data.shape
    count = math.prod(shape[i] for i in axes) if axes else 1
    out = a.data.mean(axis=axes, keepdims=keepdims)
    return result(out, (a,),
                  lambda g: (np.broadcast_to(_expand(g, axes, keepdims) / count, a.shape),))


def _extreme(a, axis, keepdims, reducer):
    """max/min: ties share the gradient equally (as TensorFlow and PyTorch's amax do)."""
    a = as_variable(a)
    axes = _axes(axis, a.data.ndim)
    kept = reducer(a.data, axis=axes, keepdims=True)
    out = kept if keepdims else np.squeeze(kept, axis=axes)

    def backward(g):
        mask = a.data == kept
        # ties share equally; the count is cast so float32 gradients stay float32
        share = mask * (1 / mask.sum(axis=axes, keepdims=True)).astype(g.dtype)
        return (share * _expand(g, axes, keepdims),)
    return result(out, (a,), backward)


def max_(a, axis=None, keepdims=False) -> Variable:
    return _extreme(a, axis, keepdims, np.max)


def min_(a, axis=None, keepdims=False) -> Variable:
    return _extreme(a, axis, keepdims, np.min)
