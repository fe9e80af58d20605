"""Depthwise 2-D convolution over channels-last images (Keras/TensorFlow semantics).

x (B, H, W, C), kernel (kh, kw, C, M) -> (B, OH, OW, C*M): every input channel ``c`` is
convolved with its own ``M`` filters, output channel ``c*M + m`` (TensorFlow's order,
the one Keras' weights assume). Padding, strides and dilation as ``ops.conv``.

There is no cross-channel sum, so no matrix product to hand the work to: the loop runs
over kernel taps (kh*kw of them), each one a broadcast multiply of a strided view of the
padded input; the backward is the same loop with the roles swapped (col2im for the input,
one contraction per tap for the kernel).
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result
from ..errors import ShapeError
from .conv import _crop, _geometry, _pad, _taps, normalize_tuple


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid",
                     dilation=1) -> Variable:
    """x (B, H, W, C), kernel (kh, kw, C, M), optional bias (C*M,) -> (B, OH, OW, C*M)."""
    x, kernel = as_variable(x), as_variable(kernel)
    parents = (x, kernel) if bias is None else (x, kernel, as_variable(bias))
    if padding not in ("valid", "same"):
        raise ValueError(f"depthwise_conv2d padding must be 'valid' or 'same', got {padding!r}")
    if x.data.ndim != 4 or kernel.data.ndim != 4 or x.shape[3] != kernel.shape[2]:
        raise ShapeError(f"depthwise_conv2d: input of shape {x.shape} does not fit a kernel "
                         f"of shape {kernel.shape} (expected (batch, height, width, "
                         f"{kernel.shape[2] if kernel.data.ndim == 4 else 'C'}))")
    strides = normalize_tuple(strides, 2, "strides")
    dilation = normalize_tuple(dilation, 2, "dilation")
    kh, kw, channels, multiplier = kernel.shape
    pads, out_hw = _geometry(x.shape, (kh, kw), strides, padding, dilation,
                             "depthwise_conv2d")
    dtype = np.result_type(x.dtype, kernel.dtype)
    xp = _pad(x.data, pads)
    w = kernel.data.astype(dtype, copy=False)
    taps = list(_taps((kh, kw), strides, dilation, out_hw))
    batch = x.shape[0]
    out = np.zeros((batch,) + out_hw + (channels, multiplier), dtype=dtype)
    for i, j, (rows, columns) in taps:
        out += xp[:, rows, columns, :, None] * w[i, j]
    out = out.reshape((batch,) + out_hw + (channels * multiplier,))
    if bias is not None:
        out += parents[2].data

    def backward(g):
        g5 = g.reshape((batch,) + out_hw + (channels, multiplier))
        gxp = np.zeros(xp.shape, dtype=g.dtype) if x.requires_grad else None
        gk = np.empty(kernel.shape, dtype=g.dtype) if kernel.requires_grad else None
        for i, j, (rows, columns) in taps:
            if gk is not None:
                gk[i, j] = np.einsum("bhwc,bhwcm->cm", xp[:, rows, columns, :], g5)
            if gxp is not None:
                gxp[:, rows, columns, :] += np.einsum("bhwcm,cm->bhwc", g5, w[i, j])
        gx = None if gxp is None else _crop(gxp, pads, x.shape)
        if bias is None:
            return gx, gk
        return gx, gk, g.sum(axis=(0, 1, 2))
    return result(out, parents, backward)
