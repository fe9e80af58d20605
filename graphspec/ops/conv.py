"""Convolution over channels-last images (Keras/TensorFlow semantics); the window
helpers pooling shares (ops/pooling.py).

Arrays are ``(batch, height, width, channels)``; 1-D variants view ``(batch, steps,
channels)`` as images of height 1. Kernels are HWIO ``(kh, kw, in, out)``.

Convolution is im2col plus ONE matrix product: the padded input is viewed as sliding
windows (no copy), copied once into a ``(batch*oh*ow, kh*kw*in)`` patch matrix and
multiplied by the kernel reshaped to ``(kh*kw*in, out)``. Its backward is two more
products: ``patches.T @ g`` for the kernel (and bias), and ``g @ kernel.T`` tap by tap,
each tap's result added into the (padded) input gradient at its shifted position
("col2im"). The loops run over kernel taps only, never over pixels or batch elements.

Padding follows TensorFlow exactly: 'same' pads ``max((ceil(n/s)-1)*s + (k-1)*d + 1 - n,
0)`` in total, the smaller half before and the extra element after; 'causal' (1-D
convolution only) pads ``(k-1)*d`` before.
"""
from __future__ import annotations

import weakref

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autodiff.engine import Variable, as_variable, result
from ..errors import ShapeError
from .threads import run_split, split_map

PADDINGS = ("valid", "same", "causal")


# -- sizes and padding (shared with the layers' shape inference) ----------------------
def normalize_tuple(value, n: int, what: str = "value") -> tuple:
    """An int or a length-``n`` sequence of ints, as a tuple of ``n`` ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    items = tuple(int(v) for v in value)
    if len(items) != n:
        raise ValueError(f"{what} must be an integer or a list of {n} integers, got {value!r}")
    return items


def output_length(length, kernel: int, stride: int, padding: str, dilation: int = 1):
    """Keras' ``conv_output_length`` (pooling is the same with dilation 1); ``None`` for
    an unknown length. Can be zero or negative: the caller reports that."""
    if length is None:
        return None
    effective = (kernel - 1) * dilation + 1
    if padding in ("same", "causal"):
        return (length + stride - 1) // stride
    if padding == "valid":
        return (length - effective + stride) // stride
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def pad_amounts(length: int, kernel: int, stride: int, padding: str,
                dilation: int = 1) -> tuple:
    """(before, after) zeros TensorFlow adds along one axis."""
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return effective - 1, 0
    if padding == "same":
        out = (length + stride - 1) // stride
        total = max((out - 1) * stride + effective - length, 0)
        return total // 2, total - total // 2
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def _geometry(shape, window, strides, padding, dilation, what):
    """Pads and output sizes of a 2-D window op on a (B, H, W, C) array."""
    pads, outs = [], []
    for axis, (n, k, s, d) in enumerate(zip(shape[1:3], window, strides, dilation)):
        before, after = pad_amounts(n, k, s, padding, d)
        out = (n + before + after - (k - 1) * d - 1) // s + 1
        if out < 1:
            dim = ("height", "width")[axis]
            raise ShapeError(f"{what}: input {dim} {n} is smaller than the window "
                             f"{(k - 1) * d + 1} with {padding!r} padding "
                             f"(input shape {tuple(shape)})")
        pads.append((before, after))
        outs.append(out)
    return tuple(pads), tuple(outs)


def _pad(x, pads, fill=0):
    """``x`` (B, H, W, C) padded on H and W; ``x`` itself when there is nothing to add."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    batch, height, width, channels = x.shape
    out = np.full((batch, height + top + bottom, width + left + right, channels), fill,
                  dtype=x.dtype)
    out[:, top:top + height, left:left + width] = x
    return out


def _crop(padded, pads, shape):
    (top, _), (left, _) = pads
    if padded.shape == tuple(shape):
        return padded
    return padded[:, top:top + shape[1], left:left + shape[2]]


def _taps(window, strides, dilation, out_hw):
    """Each kernel tap (i, j) with the (rows, cols) slices of the padded input it reads
    for every output position."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = window, strides, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(i * dh, i * dh + (oh - 1) * sh + 1, sh),
                         slice(j * dw, j * dw + (ow - 1) * sw + 1, sw))


def _overlapping(window, strides) -> bool:
    """Whether two pooling windows can read the same input element."""
    return any(s < k for k, s in zip(window, strides))


# -- convolution -----------------------------------------------------------------------
def _im2col(xp, window, strides, dilation, out_hw, ones_column, matrix=None):
    """Patch matrix (B*OH*OW, kh*kw*C) of the padded input, columns in HWC order to
    match the HWIO kernel; with ``ones_column`` a last column of ones carries the bias
    through the same product (and its gradient through the kernel-gradient product).
    ``matrix``: a buffer of at least that many rows to fill (its first rows are used)."""
    batch, _, _, channels = xp.shape
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = window, strides, dilation, out_hw
    size = kh * kw * channels
    if matrix is None:
        matrix = np.empty((batch * oh * ow, size + ones_column), dtype=xp.dtype)
    matrix = matrix[:batch * oh * ow]
    if ones_column:
        matrix[:, size] = 1
    patches = matrix[:, :size].reshape(batch, oh, ow, kh, kw, channels)   # a view
    if channels == 1:
        # One channel: kh*kw strided copies beat one 6-D gather (measured).
        for i, j, (rows, columns) in _taps(window, strides, dilation, out_hw):
            patches[:, :, :, i, j, :] = xp[:, rows, columns, :]
        return matrix
    extent = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = sliding_window_view(xp, extent, axis=(1, 2))     # (B, H', W', C, eh, ew)
    view = view[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw, :, ::dh, ::dw]
    np.copyto(patches, view.transpose(0, 1, 2, 4, 5, 3))
    return matrix


# Patch matrices above this many elements (1 MB of float32) are built and multiplied a
# few images at a time through one reused buffer, and rebuilt (not held) for the kernel
# gradient: a whole (B*OH*OW, kh*kw*C) matrix is 9x the input for a 3x3 kernel (10.7 MB
# of the CNN benchmark's 27 MB peak, now 17.5). Chunks that fit the core's L2 cache feed
# the GEMM faster, which pays for the rebuild (CPU time per step 0.90-0.95x, measured).
PATCH_CHUNK_ELEMENTS = 1 << 18


def _chunks(batch, rows_per_image, width):
    """Image ranges whose patch matrices hold at most PATCH_CHUNK_ELEMENTS elements;
    one range (the whole batch) when the matrix is small."""
    per_chunk = max(1, PATCH_CHUNK_ELEMENTS // max(rows_per_image * width, 1))
    return [(s, min(s + per_chunk, batch)) for s in range(0, batch, per_chunk)]


def _conv2d_arrays(x, kernel, bias, strides, padding, dilation, relu, need):
    """Forward on arrays; returns (out, backward) with ``backward(g)`` giving the
    gradients (x, kernel, bias) of those flagged in ``need``. ``relu`` fuses a ReLU."""
    kh, kw, cin, filters = kernel.shape
    if x.ndim != 4 or x.shape[3] != cin:
        raise ShapeError(f"conv2d: input of shape {x.shape} does not fit a kernel of shape "
                         f"{kernel.shape} (expected (batch, height, width, {cin}))")
    window = (kh, kw)
    pads, out_hw = _geometry(x.shape, window, strides, padding, dilation, "conv2d")
    batch = x.shape[0]
    size = kh * kw * cin
    xp = _pad(x, pads)
    kernel2 = kernel.reshape(size, filters)
    rows_per_image = out_hw[0] * out_hw[1]
    chunks = [(0, batch)]
    if window == (1, 1) and strides == (1, 1) and xp is x:
        cols = x.reshape(-1, cin)         # a 1x1 convolution is a plain matmul
        out = cols @ kernel2
        if bias is not None:
            out += bias
        folded = False
    else:
        # The bias rides in the product as a row of the kernel against a column of ones:
        # one pass over the output less in the forward, and its gradient comes free.
        folded = bias is not None
        if folded:
            kernel2 = np.concatenate([kernel2, bias.reshape(1, filters).astype(
                kernel2.dtype, copy=False)])
        chunks = _chunks(batch, rows_per_image, size + folded)
        cols, out = _patch_product(xp, kernel2, window, strides, dilation, out_hw, folded,
                                   chunks)
    out = out.reshape((batch,) + out_hw + (filters,))
    if relu:
        split_map(np.maximum, out, out, out.dtype.type(0))
        _mark_relu_output(out)
    padded_shape = xp.shape
    saved_cols = cols if need[1] else None     # only the kernel gradient needs them
    saved_xp = xp if need[1] and cols is None else None

    def kernel_product(g2):
        """``patches.T @ g2``: the kernel (and folded bias) gradient."""
        if saved_cols is not None:
            return saved_cols.T @ g2
        buffer, total = None, None
        for start, stop in chunks:
            part = _im2col(saved_xp[start:stop], window, strides, dilation, out_hw, folded,
                           buffer)
            buffer = part if buffer is None else buffer
            rows = slice(start * rows_per_image, stop * rows_per_image)
            product = part.T @ g2[rows]
            total = product if total is None else np.add(total, product, out=total)
        return total

    def backward(g):
        if relu and not _is_relu_masked(g):
            g = _relu_mask(g, out)
        g2 = g.reshape(-1, filters)
        gx = gk = gb = None
        if need[1]:
            both = kernel_product(g2)
            gk = both[:size].reshape(kernel.shape)
            if need[2] and folded:
                gb = both[size]
        if need[2] and gb is None:
            gb = np.ones(g2.shape[0], dtype=g2.dtype) @ g2   # a GEMV beats sum(axis=0)
        if need[0]:
            gx = _crop(_input_gradient(g2, kernel, padded_shape, window, strides, dilation,
                                       out_hw), pads, x.shape)
        return gx, gk, gb
    return out, backward


def _patch_product(xp, kernel2, window, strides, dilation, out_hw, folded, chunks):
    """``(cols, patches @ kernel2)``: ``cols`` the whole patch matrix when it was built
    in one piece, else None (built chunk by chunk through one buffer)."""
    if len(chunks) == 1:
        cols = _im2col(xp, window, strides, dilation, out_hw, folded)
        return cols, cols @ kernel2
    rows_per_image = out_hw[0] * out_hw[1]
    out = np.empty((xp.shape[0] * rows_per_image, kernel2.shape[1]),
                   dtype=np.result_type(xp.dtype, kernel2.dtype))
    buffer = None
    for start, stop in chunks:
        part = _im2col(xp[start:stop], window, strides, dilation, out_hw, folded, buffer)
        buffer = part if buffer is None else buffer
        np.dot(part, kernel2, out=out[start * rows_per_image:stop * rows_per_image])
    return None, out


def _input_gradient(g2, kernel, padded_shape, window, strides, dilation, out_hw):
    """Gradient of the padded input: ``g2 @ kernel[i, j].T`` tap by tap, each added at
    the positions that tap read ("col2im")."""
    batch, cin = padded_shape[0], kernel.shape[2]
    dtype = np.result_type(g2.dtype, kernel.dtype)
    gxp = np.zeros(padded_shape, dtype=dtype)
    # One product per tap keeps each tap's gradient contiguous for the add (a single
    # (N, kh*kw*C) product scattered from strided columns is slower); the products
    # share one buffer instead of allocating kh*kw arrays.
    g2 = np.ascontiguousarray(g2, dtype=dtype)
    tap = np.empty((g2.shape[0], cin), dtype=dtype)
    tap_image = tap.reshape((batch,) + out_hw + (cin,))
    for i, j, (rows, columns) in _taps(window, strides, dilation, out_hw):
        np.dot(g2, kernel[i, j].T.astype(dtype, copy=False), out=tap)
        gxp[:, rows, columns, :] += tap_image
    return gxp


def _relu_mask(g, out):
    """``g * (out > 0)`` into a fresh array (``g`` may be shared), split across cores."""
    masked = np.empty(g.shape, dtype=g.dtype)

    def work(start, stop):
        np.multiply(g[start:stop], out[start:stop] > 0, out=masked[start:stop])
    run_split(work, g.shape[0], g.size)
    return masked


def _grouped_arrays(x, kernel, bias, strides, padding, dilation, relu, need, groups):
    """Keras' ``groups``: input channels and filters split into ``groups`` equal blocks,
    block ``g`` of the filters sees only block ``g`` of the channels (kernel
    (kh, kw, C/groups, F)). One im2col + GEMM per group; results concatenated."""
    if groups == 1:
        return _conv2d_arrays(x, kernel, bias, strides, padding, dilation, relu, need)
    per_in, per_out = kernel.shape[2], kernel.shape[3] // groups
    if x.ndim != 4 or x.shape[3] != per_in * groups:
        raise ShapeError(f"conv2d: input of shape {x.shape} does not fit {groups} groups of "
                         f"a kernel of shape {kernel.shape} (expected {per_in * groups} "
                         "channels)")
    outs, backs = [], []
    for g in range(groups):
        filters = slice(g * per_out, (g + 1) * per_out)
        out, back = _conv2d_arrays(x[..., g * per_in:(g + 1) * per_in], kernel[..., filters],
                                   None if bias is None else bias[filters], strides,
                                   padding, dilation, relu, need)
        outs.append(out)
        backs.append(back)

    def backward(grad):
        parts = [back(grad[..., g * per_out:(g + 1) * per_out])
                 for g, back in enumerate(backs)]
        return tuple(None if part[0] is None else np.concatenate(part, axis=-1)
                     for part in zip(*parts))
    return np.concatenate(outs, axis=-1), backward


def _conv(x, kernel, bias, strides, padding, dilation, activation, squeeze, groups=1):
    """Shared wrapper: a 1-D convolution (``squeeze``) runs as a 2-D one of height 1."""
    if activation not in (None, "linear", "relu"):
        raise ValueError(f"fused activation must be 'linear' or 'relu', got {activation!r}")
    parents = (x, kernel) if bias is None else (x, kernel, as_variable(bias))
    need = (x.requires_grad, kernel.requires_grad,
            bias is not None and parents[2].requires_grad)
    data, weights = (x.data[:, None], kernel.data[None]) if squeeze else (x.data, kernel.data)
    out, back = _grouped_arrays(data, weights, None if bias is None else parents[2].data,
                                strides, padding, dilation, activation == "relu", need, groups)
    if squeeze:
        out = out[:, 0]

    def backward(g):
        gx, gk, gb = back(g[:, None] if squeeze else g)
        if squeeze:
            gx = None if gx is None else gx[:, 0]
            gk = None if gk is None else gk[0]
        return (gx, gk) if bias is None else (gx, gk, gb)
    return result(out, parents, backward)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation=1,
           activation=None, groups=1) -> Variable:
    """2-D convolution (cross-correlation, as in Keras): x (B, H, W, C), kernel
    (kh, kw, C, F), optional bias (F,) -> (B, OH, OW, F); ``activation='relu'`` fuses
    a ReLU (one pass less in each direction)."""
    x, kernel = as_variable(x), as_variable(kernel)
    if padding not in ("valid", "same"):
        raise ValueError(f"conv2d padding must be 'valid' or 'same', got {padding!r}")
    if x.data.ndim != 4 or kernel.data.ndim != 4:
        raise ShapeError(f"conv2d: expected input (batch, height, width, channels) and "
                         f"kernel (kh, kw, in, out), got {x.shape} and {kernel.shape}")
    return _conv(x, kernel, bias, normalize_tuple(strides, 2, "strides"), padding,
                 normalize_tuple(dilation, 2, "dilation"), activation, squeeze=False,
                 groups=groups)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation=1,
           activation=None, groups=1) -> Variable:
    """1-D convolution: x (B, steps, C), kernel (k, C, F), optional bias (F,) ->
    (B, out_steps, F). ``padding`` may also be 'causal' (left padding only)."""
    x, kernel = as_variable(x), as_variable(kernel)
    if padding not in PADDINGS:
        raise ValueError(f"conv1d padding must be one of {PADDINGS}, got {padding!r}")
    if x.data.ndim != 3 or kernel.data.ndim != 3:
        raise ShapeError(f"conv1d: expected input (batch, steps, channels) and kernel "
                         f"(k, in, out), got {x.shape} and {kernel.shape}")
    # Height 1 with a height-1 kernel: 'causal' pads nothing on that axis.
    return _conv(x, kernel, bias, (1, normalize_tuple(strides, 1, "strides")[0]), padding,
                 (1, normalize_tuple(dilation, 1, "dilation")[0]), activation, squeeze=True,
                 groups=groups)


# -- ReLU outputs feeding a max pool --------------------------------------------------
# A convolution with a fused ReLU registers its output array; a max pool reading such an
# array masks its (4x smaller) gradient by ``maximum > 0`` and registers the gradient it
# returns; the convolution's backward then skips its own full-size ``g * (out > 0)``
# (every element it would zero is zero already). Keyed by id with the array itself as
# a weak value, so a recycled id never matches a different array.
_RELU_OUTPUTS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_RELU_MASKED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _mark_relu_output(array) -> None:
    _RELU_OUTPUTS[id(array)] = array


def _is_relu_output(array) -> bool:
    return _RELU_OUTPUTS.get(id(array)) is array


def _mark_relu_masked(grad) -> None:
    _RELU_MASKED[id(grad)] = grad


def _is_relu_masked(grad) -> bool:
    return _RELU_MASKED.get(id(grad)) is grad


# -- padding and global pooling (max and average window pooling: ops/pooling.py) --------
def zero_pad2d(x, pads) -> Variable:
    """Zeros around H and W of (B, H, W, C): ``pads`` = ((top, bottom), (left, right))."""
    x = as_variable(x)
    if x.data.ndim != 4:
        raise ShapeError(f"zero_pad2d: expected input (batch, height, width, channels), "
                         f"got {x.shape}")
    pads = tuple((int(a), int(b)) for a, b in pads)
    out = _pad(x.data, pads)
    if out is x.data:
        out = x.data.copy()
    return result(out, (x,), lambda g: (_crop(g, pads, x.shape),))


def global_max_pool2d(x, keepdims=False) -> Variable:
    """Max over H and W of (B, H, W, C). Tied maxima share the gradient equally (as
    TensorFlow's reduce_max and PyTorch's amax); the gradient keeps the input dtype."""
    x = as_variable(x)
    if x.data.ndim != 4:
        raise ShapeError(f"global_max_pool2d: expected input (batch, height, width, "
                         f"channels), got {x.shape}")
    kept = x.data.max(axis=(1, 2), keepdims=True)

    def backward(g):
        hit = x.data == kept
        ties = hit.sum(axis=(1, 2), keepdims=True, dtype=x.dtype)
        return (hit * (g.reshape(kept.shape) / ties),)
    return result(kept if keepdims else kept[:, 0, 0], (x,), backward)
