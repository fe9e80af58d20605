"""Transposed 2-D convolution over channels-last images, Keras' arguments and sizes.

x (B, H, W, C), kernel (kh, kw, F, C) (Keras' layout: filters before input channels)
-> (B, OH, OW, F). The transposed convolution is the input-gradient of a convolution:
each input pixel scatters ``x @ kernel[i, j].T`` to position ``(h*s + i*d, w*s + j*d)``
of a "full" output of size ``(H-1)*s + (k-1)*d + 1``, and Keras' output is a window of
that full output, starting at ``(k-1)*d - left_pad`` and extended with zeros on the
right when ``output_padding`` asks for more (``left_pad`` is Keras' own rule, the one
its JAX backend uses, so every Keras backend and this code give the same sizes).

The backward is therefore a convolution: the gradient, embedded back in the full
output, goes through one im2col; its product with the kernel is the input gradient and
its product with the input is the kernel gradient.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result
from ..errors import ShapeError
from .conv import _im2col, _taps, normalize_tuple


def transpose_pads(kernel: int, stride: int, padding: str, output_padding=None,
                   dilation: int = 1) -> tuple:
    """(left, right) padding of the stride-dilated input, Keras'
    ``_convert_conv_transpose_padding_args_from_keras_to_jax``."""
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(effective, stride) - effective if output_padding is None \
            else output_padding
        return effective - 1, effective - 1 + extra
    if padding != "same":
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    total = stride + effective - 2 if output_padding is None else \
        effective + effective % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, effective - 1)
    return left, total - left


def transpose_length(length, kernel: int, stride: int, padding: str, output_padding=None,
                     dilation: int = 1):
    """Output length along one axis (Keras' ``compute_conv_transpose_output_shape``);
    None stays None."""
    if length is None:
        return None
    left, right = transpose_pads(kernel, stride, padding, output_padding, dilation)
    return (length - 1) * stride + 1 + left + right - (kernel - 1) * dilation


def _windows(full_shape, starts, lengths):
    """Per spatial axis: (source slice in the full output, target slice in the output)."""
    pairs = []
    for n, start, length in zip(full_shape[1:3], starts, lengths):
        stop = min(start + length, n)
        pairs.append((slice(start, stop), slice(0, stop - start)))
    return pairs


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None,
                     dilation=1) -> Variable:
    """Keras ``Conv2DTranspose`` on arrays: x (B, H, W, C), kernel (kh, kw, F, C), optional
    bias (F,) -> (B, OH, OW, F); ``output_padding`` None or a pair of ints."""
    x, kernel = as_variable(x), as_variable(kernel)
    parents = (x, kernel) if bias is None else (x, kernel, as_variable(bias))
    if x.data.ndim != 4 or kernel.data.ndim != 4 or x.shape[3] != kernel.shape[3]:
        raise ShapeError(f"conv2d_transpose: input of shape {x.shape} does not fit a kernel "
                         f"of shape {kernel.shape} (expected (batch, height, width, "
                         f"{kernel.shape[-1]}))")
    strides = normalize_tuple(strides, 2, "strides")
    dilation = normalize_tuple(dilation, 2, "dilation")
    extra = (None, None) if output_padding is None else \
        normalize_tuple(output_padding, 2, "output_padding")
    kh, kw, filters, channels = kernel.shape
    batch, height, width, _ = x.shape
    in_hw = (height, width)
    full = [(n - 1) * s + (k - 1) * d + 1
            for n, k, s, d in zip(in_hw, (kh, kw), strides, dilation)]
    starts, lengths = [], []
    for n, k, s, d, e in zip(in_hw, (kh, kw), strides, dilation, extra):
        left, _ = transpose_pads(k, s, padding, e, d)
        starts.append((k - 1) * d - left)
        lengths.append(transpose_length(n, k, s, padding, e, d))
    if min(lengths) < 1:
        raise ShapeError(f"conv2d_transpose: output size {tuple(lengths)} is empty")
    dtype = np.result_type(x.dtype, kernel.dtype)
    w = kernel.data.astype(dtype, copy=False)
    x2 = x.data.reshape(-1, channels).astype(dtype, copy=False)
    full_out = np.zeros((batch, *full, filters), dtype=dtype)
    tap = np.empty((x2.shape[0], filters), dtype=dtype)
    tap_image = tap.reshape(batch, height, width, filters)
    taps = list(_taps((kh, kw), strides, dilation, in_hw))
    for i, j, (rows, columns) in taps:
        np.dot(x2, w[i, j].T, out=tap)
        full_out[:, rows, columns, :] += tap_image
    (src_h, dst_h), (src_w, dst_w) = _windows(full_out.shape, starts, lengths)
    out = np.zeros((batch, *lengths, filters), dtype=dtype)
    out[:, dst_h, dst_w] = full_out[:, src_h, src_w]
    if bias is not None:
        out += parents[2].data

    def backward(g):
        g_full = np.zeros(full_out.shape, dtype=g.dtype)
        g_full[:, src_h, src_w] = g[:, dst_h, dst_w]
        cols = _im2col(g_full, (kh, kw), strides, dilation, in_hw, False)
        gx = (cols @ w.reshape(-1, channels)).reshape(x.shape) if x.requires_grad else None
        gk = (cols.T @ x2).reshape(kernel.shape) if kernel.requires_grad else None
        if bias is None:
            return gx, gk
        return gx, gk, g.sum(axis=(0, 1, 2))
    return result(out, parents, backward)
