"""Upsampling over channels-last arrays: nearest (repeat) and bilinear (half-pixel
centres, PyTorch's ``align_corners=False``, what Keras' resize does on every backend when
it enlarges by an integer factor).

Bilinear resizing is linear and separable: one small interpolation matrix per spatial
axis, applied as batched matrix products; the backward applies the transposed
matrices.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result


def repeat(x, factor: int, axis: int) -> Variable:
    """Each element repeated ``factor`` times along ``axis`` (nearest upsampling); the
    gradient sums each block of ``factor`` back onto its source element."""
    x = as_variable(x)
    out = np.repeat(x.data, factor, axis=axis)

    def backward(g):
        shape = g.shape[:axis] + (x.shape[axis], factor) + g.shape[axis + 1:]
        return (g.reshape(shape).sum(axis=axis + 1),)
    return result(out, (x,), backward)


def bilinear_matrix(size: int, factor: int, dtype) -> np.ndarray:
    """(size * factor, size) matrix of bilinear weights: output ``o`` samples the input
    at ``(o + 0.5) / factor - 0.5``, clamped to the first and last elements."""
    out = np.arange(size * factor)
    source = np.maximum((out + 0.5) / factor - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    weight = source - low
    matrix = np.zeros((size * factor, size))
    np.add.at(matrix, (out, low), 1 - weight)
    np.add.at(matrix, (out, high), weight)
    return matrix.astype(dtype)


def _rows(array, matrix):
    """``matrix`` (H', H) applied to axis 1 of (B, H, W, C): one batched GEMM on the
    contiguous (B, H, W*C) view."""
    b, h, w, c = array.shape
    return np.matmul(matrix, array.reshape(b, h, w * c)).reshape(b, -1, w, c)


def _cols(array, matrix):
    """``matrix`` (W', W) applied to axis 2 of (B, H, W, C) as (B*H, W, C) GEMMs."""
    b, h, w, c = array.shape
    return np.matmul(matrix, array.reshape(b * h, w, c)).reshape(b, h, -1, c)


def upsample_bilinear2d(x, factors) -> Variable:
    """(B, H, W, C) -> (B, H*fh, W*fw, C), bilinear."""
    x = as_variable(x)
    rows = bilinear_matrix(x.shape[1], factors[0], x.dtype)
    cols = bilinear_matrix(x.shape[2], factors[1], x.dtype)
    out = _cols(_rows(np.ascontiguousarray(x.data), rows), cols)

    def backward(g):
        return (_rows(_cols(np.ascontiguousarray(g), cols.T), rows.T),)
    return result(out, (x,), backward)
