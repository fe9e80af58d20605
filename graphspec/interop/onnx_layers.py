"""ONNX converters keyed by layer TYPE (as ``torch/onnx/symbolic_opset*.py``).

Each converter takes a :class:`~graphspec.interop.onnx_export.Call` and returns the ONNX
names of the call's outputs. It reads the layer's config and its *named* weights, as a
user's file would, never its private state. ``LAYER_REFUSALS`` lists the types that
have no ONNX form, with the reason; ``LAYER_CHECKS`` refuses particular configurations
of a type that otherwise exports. Read the other way, the two tables are the list of
what exports (the README shows it).

Layouts: graphspec is channels-last, ONNX's Conv and pooling are channels-first, so a
convolution is Transpose -> Conv -> Transpose (runtimes fuse consecutive transposes).
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import pad_amounts
from .onnx_zoo_conv import ZOO_CONV_CONVERTERS, channels_first_aware
from .onnx_expr import expression_refusal, lambda_layer
from .onnx_masks import with_masks
from .onnx_nodes import ACTIVATIONS, activation, batch_dot, l2_normalize  # noqa: F401
from .onnx_recurrent import RECURRENT_CONVERTERS, recurrent_refusal
from .onnx_zoo_attention import ZOO_ATTENTION_CHECKS, ZOO_ATTENTION_CONVERTERS

# -- core -------------------------------------------------------------------------------------
def _weight(c, key: str, make=None) -> str:
    """The initializer of one named weight of ``c.layer`` (one per layer instance)."""
    layer = c.layer
    return c.builder.weight(layer, key, make or (lambda: layer.weights[key].data))


def dense(c):
    b, cfg = c.builder, c.layer.config
    y = b.op("MatMul", [c.inputs[0], _weight(c, "kernel")], f"{c.hint}_matmul")
    if cfg["use_bias"]:
        y = b.op("Add", [y, _weight(c, "bias")], f"{c.hint}_bias")
    return [activation(b, y, cfg["activation"], c.hint)]


def activation_layer(c):
    cfg = c.layer.config
    return [activation(c.builder, c.inputs[0], cfg["activation"], c.hint, cfg["axis"])]


def identity(c):
    return [c.builder.op("Identity", [c.inputs[0]], c.hint)]


def _fold(op_type):
    def convert(c):
        out = c.inputs[0]
        for i, other in enumerate(c.inputs[1:]):   # left to right, as graphspec folds
            out = c.builder.op(op_type, [out, other],
                               c.hint if i == len(c.inputs) - 2 else f"{c.hint}_{i}")
        return [out]
    return convert


def average(c):
    total = _fold("Add")(c)[0]
    scale = c.builder.scalar(1.0 / len(c.inputs), c.builder.float_dtype)
    return [c.builder.op("Mul", [total, scale], c.hint)]


def concatenate(c):
    rank = len(c.input_shapes[0])
    return [c.builder.op("Concat", c.inputs, c.hint, axis=c.layer.config["axis"] % rank)]


def flatten(c):
    return [c.builder.op("Flatten", [c.inputs[0]], c.hint, axis=1)]


def reshape(c):
    return [c.builder.reshape(c.inputs[0], [0] + list(c.output_shapes[0][1:]), c.hint)]


def permute(c):
    return [c.builder.transpose(c.inputs[0], [0] + list(c.layer.config["dims"]), c.hint)]


def repeat_vector(c):
    b = c.builder
    x = b.unsqueeze(c.inputs[0], [1], f"{c.hint}_expanded")
    return [b.op("Tile", [x, b.i64([1, c.layer.config["n"], 1])], c.hint)]


def embedding(c):
    b, indices = c.builder, c.inputs[0]
    if c.input_dtypes[0].kind not in "iu":
        indices = b.cast(indices, np.int64, f"{c.hint}_indices")
    return [b.op("Gather", [_weight(c, "embeddings"), indices], c.hint, axis=0)]


def dot(c):
    """Keras Dot: one Einsum per call (optionally on L2-normalised inputs)."""
    b, layer = c.builder, c.layer
    a_shape, b_shape = c.input_shapes
    axes = layer.config["axes"]
    axes = axes if isinstance(axes, list) else [axes, axes]
    ax_a, ax_b = axes[0] % len(a_shape), axes[1] % len(b_shape)
    x, y = c.inputs
    if layer.config["normalize"]:
        x, y = l2_normalize(b, x, ax_a, f"{c.hint}_a"), l2_normalize(b, y, ax_b, f"{c.hint}_b")
    return [batch_dot(b, x, y, len(a_shape), len(b_shape), ax_a, ax_b, c.hint)]


# -- normalisation ------------------------------------------------------------------------------
def batch_normalization(c):
    """Inference form with the moving statistics: ``(x - mean) * scale + beta`` where
    ``scale = gamma / sqrt(moving_variance + epsilon)``, graphspec's own arithmetic."""
    b, layer, cfg = c.builder, c.layer, c.layer.config
    rank = len(c.input_shapes[0])
    axis = cfg["axis"] % rank
    bshape = (-1,) + (1,) * (rank - 1 - axis)
    dtype = b.float_dtype

    def scale():
        mv = layer.weights["moving_variance"].data.astype(dtype)
        inv = 1.0 / np.sqrt(mv + dtype.type(cfg["epsilon"]))
        if cfg["scale"]:
            inv = inv * layer.weights["gamma"].data.astype(dtype)
        return inv.reshape(bshape)
    tag = f"r{len(bshape)}"
    mean = b.weight(layer, f"moving_mean_{tag}",
                    lambda: layer.weights["moving_mean"].data.reshape(bshape))
    y = b.op("Sub", [c.inputs[0], mean], f"{c.hint}_centered")
    y = b.op("Mul", [y, b.weight(layer, f"scale_{tag}", scale)],
             c.hint if not cfg["center"] else f"{c.hint}_scaled")
    if cfg["center"]:
        beta = b.weight(layer, f"beta_{tag}", lambda: layer.weights["beta"].data.reshape(bshape))
        y = b.op("Add", [y, beta], c.hint)
    return [y]


def layer_normalization(c):
    """Per-sample mean and biased variance over ``axis``; gamma/beta (Keras' shape: the
    sorted axes) reshaped to the broadcast shape. ``rms_scaling``: x itself, not x - mean,
    is scaled by 1/sqrt(var + eps), then gamma, no beta (Keras 3's code)."""
    b, layer, cfg = c.builder, c.layer, c.layer.config
    shape = c.input_shapes[0]
    rank = len(shape)
    written = cfg["axis"] if isinstance(cfg["axis"], list) else [cfg["axis"]]
    axes = sorted(a % rank for a in written)
    bshape = tuple(shape[i] if i in axes else 1 for i in range(rank))[1:]
    x = c.inputs[0]
    mean = b.reduce("ReduceMean", x, axes, True, f"{c.hint}_mean")
    xc = b.op("Sub", [x, mean], f"{c.hint}_centered")
    var = b.reduce("ReduceMean", b.op("Mul", [xc, xc], f"{c.hint}_sq"), axes, True,
                   f"{c.hint}_var")
    eps = b.scalar(cfg["epsilon"], b.float_dtype)
    std = b.op("Sqrt", [b.op("Add", [var, eps], f"{c.hint}_vareps")], f"{c.hint}_std")
    inv = b.op("Reciprocal", [std], f"{c.hint}_inv")
    y = b.op("Mul", [x if cfg["rms_scaling"] else xc, inv], f"{c.hint}_normed")
    tag = f"r{rank}"
    if cfg["scale"] or cfg["rms_scaling"]:
        y = b.op("Mul", [y, b.weight(layer, f"gamma_{tag}",
                                     lambda: layer.weights["gamma"].data.reshape(bshape))],
                 f"{c.hint}_scaled")
    if cfg["center"] and not cfg["rms_scaling"]:
        y = b.op("Add", [y, b.weight(layer, f"beta_{tag}",
                                     lambda: layer.weights["beta"].data.reshape(bshape))],
                 f"{c.hint}_shifted")
    return [b.op("Identity", [y], c.hint)]


# -- convolution and pooling (channels-last outside, channels-first inside) ---------------------
def _spatial_pads(c, window, strides, dilation, padding):
    """ONNX ``pads`` (all befores, then all afters), or None for 'same' on unknown sizes
    (then SAME_UPPER, which is TensorFlow's rule too)."""
    spatial = c.input_shapes[0][1:-1]
    if padding == "same" and any(n is None for n in spatial):
        return None
    pairs = [pad_amounts(n if n is not None else 0, k, s, padding, d)
             for n, k, s, d in zip(spatial, window, strides, dilation)]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _channels_first(c, x):
    rank = len(c.input_shapes[0])
    return c.builder.transpose(x, [0, rank - 1] + list(range(1, rank - 1)), f"{c.hint}_nchw")


def _channels_last(c, x, hint):
    rank = len(c.input_shapes[0])
    return c.builder.transpose(x, [0] + list(range(2, rank)) + [1], hint)


def conv(c):
    b, layer, cfg = c.builder, c.layer, c.layer.config
    kernel, strides, dilation = layer.geometry()
    rank = len(kernel)
    pads = _spatial_pads(c, kernel, strides, dilation, cfg["padding"])
    # Keras (k..., in, out) -> ONNX (out, in, k...)
    w = b.weight(layer, "kernel_oihw", lambda: np.transpose(
        layer.weights["kernel"].data, (rank + 1, rank) + tuple(range(rank))))
    inputs = [_channels_first(c, c.inputs[0]), w]
    if cfg["use_bias"]:
        inputs.append(_weight(c, "bias"))
    y = b.op("Conv", inputs, f"{c.hint}_conv", kernel_shape=list(kernel),
             strides=list(strides), dilations=list(dilation), pads=pads,
             auto_pad="SAME_UPPER" if pads is None else None, group=cfg.get("groups", 1))
    y = _channels_last(c, y, f"{c.hint}_nhwc")
    return [activation(b, y, cfg["activation"], c.hint)]


def pooling(c):
    b, layer, cfg = c.builder, c.layer, c.layer.config
    pool, strides = layer.geometry()
    pads = _spatial_pads(c, pool, strides, (1,) * len(pool), cfg["padding"])
    extra = {"count_include_pad": 0} if layer.KIND == "avg" else {}
    y = b.op("MaxPool" if layer.KIND == "max" else "AveragePool",
             [_channels_first(c, c.inputs[0])], f"{c.hint}_pool", kernel_shape=list(pool),
             strides=list(strides), pads=pads,
             auto_pad="SAME_UPPER" if pads is None else None, **extra)
    return [_channels_last(c, y, c.hint)]


def _global_pool(op_type):
    def convert(c):
        return [c.builder.reduce(op_type, c.inputs[0], [1, 2], c.layer.config["keepdims"],
                                 c.hint)]
    return convert


def zero_padding2d(c):
    (top, bottom), (left, right) = c.layer.pads()
    pads = c.builder.i64([0, top, left, 0, 0, bottom, right, 0])
    return [c.builder.op("Pad", [c.inputs[0], pads], c.hint, mode="constant")]


# -- wrappers -------------------------------------------------------------------------------------
def time_distributed(c):
    """Fold time into the batch, run the wrapped layer or model inline, unfold."""
    b, inner = c.builder, c.layer.config["layer"]
    shape = c.input_shapes[0]
    folded = b.reshape(c.inputs[0], [-1] + _known(shape[2:]), f"{c.hint}_folded")
    outs = c.convert(inner, [folded], [(None,) + tuple(shape[2:])], c.input_dtypes,
                     f"{c.hint}.{inner.name}")
    batch = b.batch_of(c.inputs[0], f"{c.hint}_batch")
    results = []
    for out, target in zip(outs, c.output_shapes):
        tail = b.i64([shape[1] if shape[1] is not None else -1] + _known(target[2:]))
        full = b.op("Concat", [batch, tail], f"{c.hint}_shape", axis=0)
        results.append(b.op("Reshape", [out, full], c.hint))
    return results


def _known(dims) -> list:
    """Per-step sizes for a Reshape: unknown ones are refused up front (LAYER_CHECKS)."""
    return [int(d) for d in dims]


def _time_distributed_refusal(layer, node):
    for shape in node.input_shapes + node.output_shapes:
        if any(d is None for d in shape[2:]):
            return (f"the per-step shape {tuple(shape[2:])} has an unknown size, and "
                    "folding time into the batch needs every per-step size; give the "
                    "input shape in full")
    return None


LAYER_CONVERTERS = {
    "Activation": activation_layer, "Add": _fold("Add"), "Average": average,
    "AveragePooling2D": pooling, "BatchNormalization": batch_normalization,
    "Concatenate": concatenate, "Conv1D": conv, "Conv2D": conv, "Dense": dense, "Dot": dot,
    "Dropout": identity, "Embedding": embedding, "Flatten": flatten,
    "GlobalAveragePooling2D": _global_pool("ReduceMean"),
    "GlobalMaxPooling2D": _global_pool("ReduceMax"), "Lambda": lambda_layer,
    "LayerNormalization": layer_normalization, "MaxPooling1D": pooling,
    "MaxPooling2D": pooling, "Maximum": _fold("Max"), "Merge": lambda_layer,
    "Minimum": _fold("Min"), "Multiply": _fold("Mul"), "Permute": permute,
    "RepeatVector": repeat_vector, "Reshape": reshape, "Subtract": _fold("Sub"),
    "TimeDistributed": time_distributed, "ZeroPadding2D": zero_padding2d,
    **RECURRENT_CONVERTERS, **ZOO_ATTENTION_CONVERTERS,
    **ZOO_CONV_CONVERTERS, "AveragePooling1D": pooling,
}
# the masked forms (onnx_masks), then data_format: channels_first (conv, pooling,
# padding, Flatten...) around every converter
LAYER_CONVERTERS = channels_first_aware(with_masks(LAYER_CONVERTERS))

# Layer types with no ONNX form, and why (none today: every registered type exports).
LAYER_REFUSALS: dict = {}

# Configurations of an exported type that cannot be exported: (layer, the call that uses
# it, directly or through a wrapper) -> reason or None.
LAYER_CHECKS = {
    "Lambda": expression_refusal, "Merge": expression_refusal,
    "TimeDistributed": _time_distributed_refusal,
    "SimpleRNN": recurrent_refusal, "LSTM": recurrent_refusal, "GRU": recurrent_refusal,
    **ZOO_ATTENTION_CHECKS,
}


def layer_refusal(layer, node) -> str | None:
    """Why ``layer``, as ``node`` calls it, cannot be exported, or None if it can."""
    kind = layer.TYPE
    if kind in LAYER_REFUSALS:
        return LAYER_REFUSALS[kind]
    if kind not in LAYER_CONVERTERS:
        return f"no ONNX converter for layer type {kind}"
    check = LAYER_CHECKS.get(kind)
    return check(layer, node) if check else None
