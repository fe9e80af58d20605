"""Pooling over channels-last images (Keras/TensorFlow semantics): max and average
over windows and their 1-D forms (zero padding and global max pooling: ops/conv.py).

Arrays are ``(batch, height, width, channels)``; each op reads its windows as ``kh*kw``
strided views of the (padded) input, one per tap, so the loops run over taps only.
Forward and backward split the batch across cores (``ops.threads``).
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, is_recording, result
from ..errors import ShapeError
from .conv import (_crop, _geometry, _is_relu_output, _mark_relu_masked, _overlapping,
                   _pad, _taps, normalize_tuple)
from .threads import run_split


# -- pooling -----------------------------------------------------------------------------
def _pool_setup(x, pool_size, strides, padding, what):
    pool = normalize_tuple(pool_size, 2, "pool_size")
    strides = pool if strides is None else normalize_tuple(strides, 2, "strides")
    if x.data.ndim != 4:
        raise ShapeError(f"{what}: expected input (batch, height, width, channels), "
                         f"got {x.shape}")
    pads, out_hw = _geometry(x.shape, pool, strides, padding, (1, 1), what)
    return pool, strides, pads, out_hw


def _scatter_taps(padded_shape, taps, pool, strides, out_hw, values, dtype):
    """Gradient of the padded input: tap ``t``'s contribution ``values(t, start, stop)``
    (for the images ``start:stop``) added at the elements that tap read, the batch
    split across cores. Non-overlapping windows are written, not added, and the array
    is only zeroed when the windows leave some elements unread."""
    overlap = _overlapping(pool, strides)
    tiles = not overlap and all(k == s for k, s in zip(pool, strides)) and \
        padded_shape[1] == out_hw[0] * pool[0] and padded_shape[2] == out_hw[1] * pool[1]
    grad = (np.empty if tiles else np.zeros)(padded_shape, dtype=dtype)

    def scatter(start, stop):
        for t, (_, _, (rows, columns)) in enumerate(taps):
            target = grad[start:stop, rows, columns]
            if overlap:
                target += values(t, start, stop)
            else:
                values(t, start, stop, out=target)
    run_split(scatter, padded_shape[0], int(np.prod(padded_shape)))
    return grad


def max_pool2d(x, pool_size=2, strides=None, padding="valid") -> Variable:
    """Max over windows; 'same' padding never wins (pads with -inf). The gradient goes to
    the first maximum of each window in row-major order (as TensorFlow and PyTorch).
    Forward and backward split the batch across cores (``ops.threads``)."""
    x = as_variable(x)
    pool, strides, pads, out_hw = _pool_setup(x, pool_size, strides, padding, "max_pool2d")
    dtype = x.dtype
    low = -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min
    xp = _pad(x.data, pads, fill=low)
    taps = list(_taps(pool, strides, (1, 1), out_hw))
    track = is_recording() and x.requires_grad
    index_type = np.uint8 if len(taps) < 128 else np.int32
    unrouted_bit = index_type(1 << 7 if index_type is np.uint8 else 1 << 30)  # > any tap
    out = np.empty((xp.shape[0],) + out_hw + (xp.shape[3],), dtype=dtype)
    # Which tap holds each window's maximum: the last tap that beat the running maximum,
    # and as taps are numbered upwards that is the largest such number.
    index = np.zeros(out.shape, dtype=index_type) if track else None

    def forward(start, stop):
        images, maxima = xp[start:stop], out[start:stop]
        np.copyto(maxima, images[:, taps[0][2][0], taps[0][2][1]])
        for t, (_, _, (rows, columns)) in enumerate(taps[1:], start=1):
            window = images[:, rows, columns]
            if track:
                better = np.greater(window, maxima).view(np.uint8).astype(index_type,
                                                                          copy=False)
                better *= index_type(t)
                np.maximum(index[start:stop], better, out=index[start:stop])
            np.maximum(maxima, window, out=maxima)
    run_split(forward, xp.shape[0], xp.size)
    if not track:
        return result(out, (x,), None)
    padded_shape = xp.shape
    # A ReLU output's gradient is masked by ``output > 0`` in its producer's backward;
    # here that mask costs a quarter of the pass (``maximum > 0`` for the element each
    # window routes to), and the producer is told so (see ``_RELU_OUTPUTS``).
    after_relu = _is_relu_output(x.data)

    def backward(g):
        if after_relu:    # windows whose maximum is 0 route to no tap (no copy of g)
            def unroute(start, stop):
                # a high bit no tap number has; 10x faster than copyto(..., where=)
                unrouted = (out[start:stop] <= 0).astype(index_type)
                unrouted *= unrouted_bit
                np.bitwise_or(index[start:stop], unrouted, out=index[start:stop])
            run_split(unroute, out.shape[0], out.size)

        def routed(t, start, stop, out=None):
            return np.multiply(g[start:stop], index[start:stop] == t, out=out)
        grad = _scatter_taps(padded_shape, taps, pool, strides, out_hw, routed, g.dtype)
        grad = _crop(grad, pads, x.shape)
        if after_relu:
            _mark_relu_masked(grad)
        return (grad,)
    return result(out, (x,), backward)


def _window_counts(length, kernel, stride, pads, out):
    """Per output position, how many of its window's elements are real (not padding)."""
    start = np.arange(out) * stride - pads[0]
    return np.minimum(start + kernel, length) - np.maximum(start, 0)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid") -> Variable:
    """Mean over windows; with 'same' padding only the real elements are averaged
    (TensorFlow's behaviour, ``count_include_pad=False`` in PyTorch terms)."""
    x = as_variable(x)
    pool, strides, pads, out_hw = _pool_setup(x, pool_size, strides, padding, "avg_pool2d")
    dtype = x.dtype
    xp = _pad(x.data, pads)
    if xp is x.data:
        count = dtype.type(pool[0] * pool[1])
    else:
        rows = _window_counts(x.shape[1], pool[0], strides[0], pads[0], out_hw[0])
        cols = _window_counts(x.shape[2], pool[1], strides[1], pads[1], out_hw[1])
        count = (rows[:, None] * cols[None, :]).astype(dtype)[:, :, None]
    taps = list(_taps(pool, strides, (1, 1), out_hw))
    total = None
    for _, _, (r, c) in taps:
        window = xp[:, r, c, :]
        if total is None:
            total = window.copy()
        else:
            total += window
    total /= count
    out, padded_shape = total, xp.shape

    def backward(g):
        share = g / count

        def spread(t, start, stop, out=None):
            if out is None:
                return share[start:stop]
            out[...] = share[start:stop]
            return out
        grad = _scatter_taps(padded_shape, taps, pool, strides, out_hw, spread, share.dtype)
        return (_crop(grad, pads, x.shape),)
    return result(out, (x,), backward)


def _pool1d(op, x, pool_size, strides, padding):
    x = as_variable(x)
    if x.data.ndim != 3:
        raise ShapeError(f"{op.__name__[:-2]}1d: expected input (batch, steps, channels), "
                         f"got {x.shape}")
    size = normalize_tuple(pool_size, 1, "pool_size")[0]
    stride = size if strides is None else normalize_tuple(strides, 1, "strides")[0]
    image = result(x.data[:, None], (x,), lambda g: (g[:, 0],))
    pooled = op(image, (1, size), (1, stride), padding)
    return result(pooled.data[:, 0], (pooled,), lambda g: (g[:, None],))


def max_pool1d(x, pool_size=2, strides=None, padding="valid") -> Variable:
    """Max pooling over (B, steps, C)."""
    return _pool1d(max_pool2d, x, pool_size, strides, padding)


def avg_pool1d(x, pool_size=2, strides=None, padding="valid") -> Variable:
    """Average pooling over (B, steps, C) (real elements only under 'same')."""
    return _pool1d(avg_pool2d, x, pool_size, strides, padding)
