"""ONNX converters for the convolution, pooling, resizing and activation layers of
Layer zoo II, keyed by layer TYPE; ``onnx_layers`` merges ``ZOO_CONV_CONVERTERS`` into its
table. Each reads the layer's config and named weights only.

Layouts as in ``onnx_layers``: graphspec is channels-last, ONNX's Conv, ConvTranspose
and Resize-on-images are channels-first, so those run between two Transposes.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..layers.data_format import channels_first, last_shape
from ..ops.conv import pad_amounts
from ..ops.conv_transpose import transpose_pads

INT64_MAX = np.iinfo(np.int64).max


def _activation(c, y, name):
    # onnx_layers imports this module for its table, so its helper is looked up here,
    # at conversion time (as onnx_unrolled does)
    from .onnx_nodes import activation
    return activation(c.builder, y, name, c.hint)


def _nchw(c, x):
    return c.builder.transpose(x, [0, 3, 1, 2], f"{c.hint}_nchw")


def _nhwc(c, x, hint):
    return c.builder.transpose(x, [0, 2, 3, 1], hint)


def _same_or_valid_pads(c, kernel, strides, dilation):
    """ONNX ``pads`` for the call's padding, or None (then SAME_UPPER, TensorFlow's rule)
    when 'same' meets an image size unknown at export time."""
    padding = c.layer.config["padding"]
    spatial = c.input_shapes[0][1:3]
    if padding == "same" and any(n is None for n in spatial):
        return None
    pairs = [pad_amounts(n or 0, k, s, padding, d)
             for n, k, s, d in zip(spatial, kernel, strides, dilation)]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _depthwise(c, x, kernel_key, bias_key, hint):
    """Grouped Conv (group = channels): Keras (kh, kw, C, M) -> ONNX (C*M, 1, kh, kw)."""
    b, layer = c.builder, c.layer
    kernel, strides, dilation = layer.geometry()
    pads = _same_or_valid_pads(c, kernel, strides, dilation)

    def weight():
        k = layer.weights[kernel_key].data
        return k.reshape(k.shape[:2] + (1, -1)).transpose(3, 2, 0, 1)
    inputs = [x, b.weight(layer, f"{kernel_key}_oihw", weight)]
    if bias_key:
        inputs.append(b.weight(layer, bias_key, lambda: layer.weights[bias_key].data))
    channels = c.input_shapes[0][-1]
    return b.op("Conv", inputs, hint, kernel_shape=list(kernel), strides=list(strides),
                dilations=list(dilation), pads=pads, group=int(channels),
                auto_pad="SAME_UPPER" if pads is None else None)


def depthwise_conv2d(c):
    bias = "bias" if c.layer.config["use_bias"] else None
    y = _depthwise(c, _nchw(c, c.inputs[0]), "kernel", bias, f"{c.hint}_conv")
    return [_activation(c, _nhwc(c, y, f"{c.hint}_nhwc"), c.layer.config["activation"])]


def separable_conv2d(c):
    b, layer = c.builder, c.layer
    y = _depthwise(c, _nchw(c, c.inputs[0]), "depthwise_kernel", None, f"{c.hint}_depthwise")
    inputs = [y, b.weight(layer, "pointwise_kernel_oihw", lambda: np.transpose(
        layer.weights["pointwise_kernel"].data, (3, 2, 0, 1)))]
    if layer.config["use_bias"]:
        inputs.append(b.weight(layer, "bias", lambda: layer.weights["bias"].data))
    y = b.op("Conv", inputs, f"{c.hint}_pointwise", kernel_shape=[1, 1])
    return [_activation(c, _nhwc(c, y, f"{c.hint}_nhwc"), layer.config["activation"])]


def conv2d_transpose(c):
    """ConvTranspose without padding gives the full output; Keras' window of it is the
    ``pads`` at the start and, where Keras' output runs past the full output (an
    output_padding), ``output_padding`` at the end (those elements hold the bias only)."""
    b, layer = c.builder, c.layer
    kernel, strides, dilation = layer.geometry()
    begins, ends, extras = [], [], []
    for k, s, d, e in zip(kernel, strides, dilation, layer.extra()):
        left, right = transpose_pads(k, s, layer.config["padding"], e, d)
        crop_left, crop_right = (k - 1) * d - left, (k - 1) * d - right
        begins.append(crop_left)
        ends.append(max(crop_right, 0))
        extras.append(max(-crop_right, 0))
    inputs = [_nchw(c, c.inputs[0]), b.weight(layer, "kernel_iohw", lambda: np.transpose(
        layer.weights["kernel"].data, (3, 2, 0, 1)))]
    if layer.config["use_bias"]:
        inputs.append(b.weight(layer, "bias", lambda: layer.weights["bias"].data))
    y = b.op("ConvTranspose", inputs, f"{c.hint}_deconv", kernel_shape=list(kernel),
             strides=list(strides), dilations=list(dilation), pads=begins + ends,
             output_padding=extras if any(extras) else None)
    return [_activation(c, _nhwc(c, y, f"{c.hint}_nhwc"), layer.config["activation"])]


def up_sampling1d(c):
    """Each step repeated: (B, T, C) -> (B, T, 1, C) -> expanded -> (B, T*size, C)."""
    b, size = c.builder, c.layer.config["size"]
    channels = c.input_shapes[0][-1]
    x = b.unsqueeze(c.inputs[0], [2], f"{c.hint}_expanded")
    shape = b.op("Concat", [b.i64([1, 1]), b.i64([size]), b.i64([1])], f"{c.hint}_reps",
                 axis=0)
    x = b.op("Tile", [x, shape], f"{c.hint}_tiled")
    return [b.reshape(x, [0, -1, channels], c.hint)]


def up_sampling2d(c):
    """Resize on NCHW: nearest as 'asymmetric' + 'floor' (exact repeats), bilinear as
    'half_pixel' linear (Keras' and PyTorch's align_corners=False)."""
    b, layer = c.builder, c.layer
    sh, sw = layer.factors()
    scales = b.const(np.array([1, 1, sh, sw], dtype=np.float32), f"{c.hint}_scales")
    if layer.config["interpolation"] == "bilinear":
        extra = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        extra = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    y = b.op("Resize", [_nchw(c, c.inputs[0]), "", scales], f"{c.hint}_resize", **extra)
    return [_nhwc(c, y, c.hint)]


def _crop(c, pairs, axes):
    starts = [p[0] for p in pairs]
    ends = [-p[1] if p[1] else INT64_MAX for p in pairs]
    return [c.builder.slice(c.inputs[0], starts, ends, axes, hint=c.hint)]


def cropping1d(c):
    return _crop(c, [c.layer.pair("cropping")], [1])


def cropping2d(c):
    return _crop(c, list(c.layer.crops()), [1, 2])


def zero_padding1d(c):
    left, right = c.layer.pair("padding")
    pads = c.builder.i64([0, left, 0, 0, right, 0])
    return [c.builder.op("Pad", [c.inputs[0], pads], c.hint, mode="constant")]


def _global_pool_1d(op_type):
    def convert(c):
        return [c.builder.reduce(op_type, c.inputs[0], [1], c.layer.config["keepdims"],
                                 c.hint)]
    return convert


def relu(c):
    """Keras' ReLU: where(x > threshold, min(x, max_value), 0)
    + negative_slope * min(x - threshold, 0)."""
    b, cfg, x = c.builder, c.layer.config, c.inputs[0]
    dtype = b.float_dtype
    top, slope, threshold = cfg["max_value"], cfg["negative_slope"], cfg["threshold"]
    if top is None and not slope and not threshold:
        return [b.op("Relu", [x], c.hint)]
    capped = x if top is None else b.op("Min", [x, b.scalar(top, dtype)], f"{c.hint}_capped")
    above = b.op("Greater", [x, b.scalar(threshold, dtype)], f"{c.hint}_above")
    y = b.op("Where", [above, capped, b.scalar(0, dtype)], f"{c.hint}_positive")
    if slope:
        shifted = b.op("Sub", [x, b.scalar(threshold, dtype)], f"{c.hint}_shifted")
        below = b.op("Min", [shifted, b.scalar(0, dtype)], f"{c.hint}_below")
        y = b.op("Add", [y, b.op("Mul", [below, b.scalar(slope, dtype)], f"{c.hint}_leak")],
                 c.hint)
    return [y]


def leaky_relu(c):
    return [c.builder.op("LeakyRelu", [c.inputs[0]], c.hint,
                         alpha=float(c.layer.config["negative_slope"]))]


def prelu(c):
    layer = c.layer
    alpha = c.builder.weight(layer, "alpha", lambda: layer.weights["alpha"].data)
    return [c.builder.op("PRelu", [c.inputs[0], alpha], c.hint)]


def elu(c):
    return [c.builder.op("Elu", [c.inputs[0]], c.hint, alpha=float(c.layer.config["alpha"]))]


def softmax(c):
    """One axis: Softmax; several: exp(x - ReduceLogSumExp(x, axes))."""
    b = c.builder
    axes = c.layer.axes(len(c.input_shapes[0]))
    if len(axes) == 1:
        return [b.op("Softmax", [c.inputs[0]], c.hint, axis=axes[0])]
    total = b.reduce("ReduceLogSumExp", c.inputs[0], axes, True, f"{c.hint}_logsumexp")
    return [b.op("Exp", [b.op("Sub", [c.inputs[0], total], f"{c.hint}_shifted")], c.hint)]


ZOO_CONV_CONVERTERS = {
    "Conv2DTranspose": conv2d_transpose, "Cropping1D": cropping1d, "Cropping2D": cropping2d,
    "DepthwiseConv2D": depthwise_conv2d, "ELU": elu,
    "GlobalAveragePooling1D": _global_pool_1d("ReduceMean"),
    "GlobalMaxPooling1D": _global_pool_1d("ReduceMax"), "LeakyReLU": leaky_relu,
    "PReLU": prelu, "ReLU": relu, "SeparableConv2D": separable_conv2d, "Softmax": softmax,
    "UpSampling1D": up_sampling1d, "UpSampling2D": up_sampling2d,
    "ZeroPadding1D": zero_padding1d,
}


def channels_first_aware(converters: dict) -> dict:
    """Every converter of ``converters`` made to honour ``data_format: channels_first``
    as the layers do: the input transposed to channels-last, the channels-last
    converter, outputs of rank > 2 transposed back. Layers without the argument (or
    channels-last) go straight to their converter."""
    return {kind: _channels_first_call(convert) for kind, convert in converters.items()}


def _channels_first_call(convert):
    def wrapped(c):
        layer = c.layer
        if not channels_first(layer) or len(c.input_shapes[0]) < 3:
            return convert(c)
        b, rank = c.builder, len(c.input_shapes[0])
        x = b.transpose(c.inputs[0], [0, *range(2, rank), 1], f"{c.hint}_channels_last")
        inner = replace(c, inputs=[x], hint=f"{c.hint}_inner",
                        input_shapes=[last_shape(layer, s) for s in c.input_shapes],
                        output_shapes=[last_shape(layer, s) for s in c.output_shapes])
        outs = convert(inner)
        return [y if len(shape) < 3 else
                b.transpose(y, [0, len(shape) - 1, *range(1, len(shape) - 1)], c.hint)
                for y, shape in zip(outs, inner.output_shapes)]
    return wrapped
