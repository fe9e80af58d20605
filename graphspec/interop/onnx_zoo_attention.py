"""ONNX converters for the attention, normalisation, preprocessing and noise layers of
Layer zoo II (merged into ``onnx_layers.LAYER_CONVERTERS``). Each reads the layer's
config and named weights and repeats graphspec's arithmetic with ONNX nodes: batched
MatMuls over (batch, heads), masks as Where with Keras' -1e9 fill. The noise layers are
the identity, as at inference."""
from __future__ import annotations

import math

import numpy as np

from ..ops.attention import MASK_FILL


def _weight(c, key: str, make=None) -> str:
    layer = c.layer
    return c.builder.weight(layer, key, make or (lambda: layer.weights[key].data))


def _float_input(c, index: int = 0) -> str:
    """Input ``index`` as the export's float type (integer pixels for Rescaling)."""
    x = c.inputs[index]
    if c.input_dtypes[index].kind != "f":
        x = c.builder.cast(x, c.builder.float_dtype, f"{c.hint}_float{index}")
    return x


def _dims(c, x: str, start: int, end: int, hint: str) -> str:
    """Entries ``start:end`` of ``Shape(x)`` (1-D int64)."""
    b = c.builder
    return b.slice(b.op("Shape", [x], f"{hint}_shape"), [start], [end], [0], hint=hint)


def _causal(c, scores: str, rank: int) -> str:
    """Keras' causal mask for the last two axes of ``scores``: row i keeps columns <= i,
    built from the run-time sizes (works for unknown sequence lengths)."""
    b = c.builder
    zero, one = b.i64([0]), b.i64([1])

    def arange(axis, hint):
        size = b.squeeze(_dims(c, scores, axis, axis + 1, f"{hint}_n"), [0], f"{hint}_size")
        return b.op("Range", [b.squeeze(zero, [0], f"{hint}_0"), size,
                              b.squeeze(one, [0], f"{hint}_1")], hint)
    rows = b.unsqueeze(arange(rank - 2, f"{c.hint}_rows"), [1], f"{c.hint}_rows_col")
    cols = b.unsqueeze(arange(rank - 1, f"{c.hint}_cols"), [0], f"{c.hint}_cols_row")
    return b.op("GreaterOrEqual", [rows, cols], f"{c.hint}_causal")


# What a masked score becomes on each of Keras' code paths (graphspec/ops/attention.py
# MASK_MODES): "fill" -1e9 and the probability zeroed after (Keras' Softmax layer),
# "bias" + -0.7 * 3.38953e38 (torch's fused attention), "subtract" - 1e9 (Attention).
_LARGE = {"fill": MASK_FILL, "bias": -0.7 * 3.38953e38, "subtract": -1e9}


def masked_softmax(b, x: str, keep, how: str, axes, hint: str) -> str:
    """graphspec's ``masked_softmax``: softmax over ``axes`` with the boolean ``keep``
    (broadcastable; None: no mask) applied as Keras' code path ``how`` applies it."""
    axes = [axes] if isinstance(axes, int) else list(axes)
    if keep is not None:
        big = b.scalar(_LARGE[how], b.float_dtype)
        if how == "fill":
            x = b.op("Where", [keep, x, big], f"{hint}_filled")
        elif how == "bias":
            x = b.op("Add", [x, b.op("Where", [keep, b.scalar(0, b.float_dtype), big],
                                     f"{hint}_bias")], f"{hint}_biased")
        else:
            x = b.op("Where", [keep, x, b.op("Add", [x, big], f"{hint}_lowered")],
                     f"{hint}_subtracted")
    if len(axes) == 1:
        probs = b.op("Softmax", [x], f"{hint}_softmax" if how == "fill" and keep is not None
                     else hint, axis=axes[0])
    else:
        total = b.reduce("ReduceLogSumExp", x, axes, True, f"{hint}_logsumexp")
        probs = b.op("Exp", [b.op("Sub", [x, total], f"{hint}_shifted")],
                     f"{hint}_exp" if how == "fill" and keep is not None else hint)
    if how == "fill" and keep is not None:
        probs = b.op("Where", [keep, probs, b.scalar(0, b.float_dtype)], hint)
    return probs


def _both(b, a, other, hint):
    return other if a is None else b.op("And", [a, other], hint)


# -- MultiHeadAttention ------------------------------------------------------------------
def _heads(c, x: str, role: str, per_head: int) -> str:
    """``x (B, T, d)`` projected and split: ``(B, N, T, per_head)``."""
    b, layer = c.builder, c.layer
    heads = layer.config["num_heads"]
    kernel = _weight(c, f"{role}_kernel_2d",
                     lambda: layer.weights[f"{role}_kernel"].data.reshape(-1, heads * per_head))
    y = b.op("MatMul", [x, kernel], f"{c.hint}_{role}")
    if layer.config["use_bias"]:
        bias = _weight(c, f"{role}_bias_1d",
                       lambda: layer.weights[f"{role}_bias"].data.reshape(-1))
        y = b.op("Add", [y, bias], f"{c.hint}_{role}_bias")
    y = b.reshape(y, [0, -1, heads, per_head], f"{c.hint}_{role}_heads")
    return b.transpose(y, [0, 2, 1, 3], f"{c.hint}_{role}_bnth")


def multi_head_attention(c):
    """Rank-3 inputs directly; higher ranks folded as the layer folds them (carried axes
    into the batch, attention axes into one step axis) and unfolded after."""
    layer = c.layer
    query, value, key, mask = layer._split(list(zip(c.inputs, c.input_dtypes)))
    shapes = layer._split(c.input_shapes)
    masks = list(layer._split([c.mask(i) for i in range(len(c.inputs))])[:3])
    if len(c.inputs) - (1 if layer.config["attention_mask"] else 0) == 2:
        masks[2] = None             # Keras: no key given, so no key mask (the value's)
    rank = len(shapes[0])
    out_dims = list(layer._out_dims(shapes[0]))
    if rank == 3:
        y, probs = _attend(c, query[0], value[0], key[0], mask, masks)
        if len(out_dims) > 1:
            y = c.builder.reshape(y, [0, -1] + out_dims, f"{c.hint}_out_shape")
        return _outputs(c, y, probs)
    return _attend_folded(c, query[0], value[0], key[0], shapes, out_dims)


def _attend_folded(c, query, value, key, shapes, out_dims):
    b, layer = c.builder, c.layer
    rank = len(shapes[0])
    carried, attended = layer.layout(rank)
    order = [0] + list(carried) + list(attended) + [rank - 1]

    def fold(x, shape, hint):
        if order != list(range(rank)):
            x = b.transpose(x, order, f"{hint}_moved")
        steps = int(np.prod([shape[i] for i in attended]))
        return b.reshape(x, [-1, steps, shape[-1]], f"{hint}_folded")
    y, probs = _attend(c, fold(query, shapes[0], f"{c.hint}_q"),
                       fold(value, shapes[1], f"{c.hint}_v"),
                       fold(key, shapes[2], f"{c.hint}_k"), None)
    lead = [-1] + [shapes[0][i] for i in carried]
    q_att = [shapes[0][i] for i in attended]
    y = b.reshape(y, lead + q_att + out_dims, f"{c.hint}_unfolded")
    back = list(np.argsort(order[:-1])) + list(range(rank - 1, rank - 1 + len(out_dims)))
    if back != list(range(len(back))):
        y = b.transpose(y, back, f"{c.hint}_back")
    if probs is not None and c.layer.config["return_attention_scores"]:
        k_att = [shapes[1][i] for i in attended]
        probs = b.reshape(probs, lead + [layer.num_heads] + q_att + k_att,
                          f"{c.hint}_scores_unfolded")
    return _outputs(c, y, probs)


def _outputs(c, y, probs):
    y = c.builder.op("Identity", [y], c.hint)
    return [y, probs] if c.layer.config["return_attention_scores"] else [y]


def _attend(c, query: str, value: str, key: str, mask, tensor_masks=(None,) * 3):
    """Rank-3 attention: ``(out (B, T, prod E), probabilities (B, N, T, S))``; ``mask``
    the attention_mask input, ``tensor_masks`` the query, value and key step masks."""
    b, layer, cfg = c.builder, c.layer, c.layer.config
    heads, kdim = cfg["num_heads"], cfg["key_dim"]
    vdim = cfg["value_dim"] or kdim
    q = _heads(c, query, "query", kdim)
    k = _heads(c, key, "key", kdim)
    v = _heads(c, value, "value", vdim)
    scores = b.op("MatMul", [q, b.transpose(k, [0, 1, 3, 2], f"{c.hint}_kT")],
                  f"{c.hint}_dot")
    scores = b.op("Mul", [scores, b.scalar(1.0 / math.sqrt(kdim), b.float_dtype)],
                  f"{c.hint}_scores")
    keep = None
    q_mask, v_mask, k_mask = tensor_masks
    if q_mask is not None:          # (B, 1, T, 1)
        keep = b.unsqueeze(q_mask, [1, 3], f"{c.hint}_query_keep")
    for role, m in (("value", v_mask), ("key", k_mask)):
        if m is not None:           # (B, 1, 1, S)
            keep = _both(b, keep, b.unsqueeze(m, [1, 2], f"{c.hint}_{role}_keep"),
                         f"{c.hint}_{role}_and")
    if cfg["use_causal_mask"]:
        keep = _both(b, keep, _causal(c, scores, 4), f"{c.hint}_keep")
    if mask is not None:
        zero = b.scalar(0, np.dtype(mask[1]))
        nonzero = b.op("Not", [b.op("Equal", [mask[0], zero], f"{c.hint}_mask_zero")],
                       f"{c.hint}_mask_keep")
        keep = _both(b, keep, b.unsqueeze(nonzero, [1], f"{c.hint}_mask_heads"),
                     f"{c.hint}_all_keep")
    # Keras' fused path (torch's scaled_dot_product_attention) unless it must return
    # or drop the probabilities: the two treat fully masked rows differently
    fused = cfg["dropout"] == 0 and not cfg["return_attention_scores"]
    probs = masked_softmax(b, scores, keep, "bias" if fused else "fill", -1,
                           f"{c.hint}_probs")
    mixed = b.op("MatMul", [probs, v], f"{c.hint}_mixed")                 # (B, N, T, V)
    mixed = b.reshape(b.transpose(mixed, [0, 2, 1, 3], f"{c.hint}_btnv"),
                      [0, -1, heads * vdim], f"{c.hint}_concat")
    kernel = _weight(c, "attention_output_kernel_2d",
                     lambda: layer.weights["attention_output_kernel"].data
                     .reshape(heads * vdim, -1))
    y = b.op("MatMul", [mixed, kernel], f"{c.hint}_out")
    if cfg["use_bias"]:
        bias = _weight(c, "attention_output_bias_1d",
                       lambda: layer.weights["attention_output_bias"].data.reshape(-1))
        y = b.op("Add", [y, bias], f"{c.hint}_out_bias")
    return y, probs


def mha_refusal(layer, node):
    """Higher-rank inputs fold with constant shapes: every axis but the batch known."""
    query, value, key, _ = layer._split(node.input_shapes)
    if len(query) > 3:
        for shape in (query, value, key):
            if any(d is None for d in shape[1:]):
                return (f"inputs of rank {len(query)} are folded to attend over their "
                        f"attention axes, which needs every size known; got {shape[1:]}")
    return None


# -- Attention and AdditiveAttention --------------------------------------------------------
def _additive_scores(c, q, k, rank, hint):
    b, layer = c.builder, c.layer
    pairs = b.op("Add", [b.unsqueeze(q, [rank - 1], f"{hint}_q"),
                         b.unsqueeze(k, [rank - 2], f"{hint}_k")], f"{hint}_pairs")
    if layer.TYPE == "Attention" and layer.config["use_scale"]:
        pairs = b.op("Mul", [_weight(c, "scale"), pairs], f"{hint}_scaled")
    pairs = b.op("Tanh", [pairs], f"{hint}_tanh")
    if layer.TYPE == "AdditiveAttention" and layer.config["use_scale"]:
        pairs = b.op("Mul", [pairs, _weight(c, "scale")], f"{hint}_weighted")
    scores = b.reduce("ReduceSum", pairs, [rank], False, f"{hint}_sum")
    if layer.TYPE == "Attention":
        scores = b.op("Mul", [_weight(c, "concat_score_weight"), scores], hint)
    return scores


def attention(c):
    b, layer, cfg = c.builder, c.layer, c.layer.config
    q, v = c.inputs[0], c.inputs[1]
    k = c.inputs[2] if len(c.inputs) == 3 else v
    rank = len(c.input_shapes[0])
    if layer.TYPE == "Attention" and cfg["score_mode"] == "dot":
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        scores = b.op("MatMul", [q, b.transpose(k, perm, f"{c.hint}_kT")], f"{c.hint}_dot")
        if cfg["use_scale"]:
            scores = b.op("Mul", [scores, _weight(c, "scale")], f"{c.hint}_scores")
    else:
        scores = _additive_scores(c, q, k, rank, f"{c.hint}_scores")
    keep = _causal(c, scores, rank) if cfg["use_causal_mask"] else None
    if c.mask(1) is not None:       # the value's mask masks keys: (B, 1, Tv)
        keep = _both(b, keep, b.unsqueeze(c.mask(1), [-2], f"{c.hint}_value_keep"),
                     f"{c.hint}_keep")
    probs = masked_softmax(b, scores, keep, "subtract", -1, f"{c.hint}_probs")
    out = b.op("MatMul", [probs, v], c.hint if c.mask(0) is None else f"{c.hint}_mixed")
    if c.mask(0) is not None:       # the query's mask zeroes the rows of masked queries
        out = b.op("Where", [b.unsqueeze(c.mask(0), [-1], f"{c.hint}_query_keep"), out,
                             b.scalar(0, b.float_dtype)], c.hint)
    return [out, probs] if cfg["return_attention_scores"] else [out]


# -- normalisation and preprocessing ----------------------------------------------------------
def group_normalization(c):
    b, layer, cfg = c.builder, c.layer, c.layer.config
    shape = c.input_shapes[0]
    rank = len(shape)
    axis = cfg["axis"] % rank
    groups = layer._groups(shape[axis])
    x = c.inputs[0]
    full = b.op("Shape", [x], f"{c.hint}_shape")
    grouped = b.op("Concat", [b.slice(full, [0], [axis], [0], hint=f"{c.hint}_pre"),
                              b.i64([groups, shape[axis] // groups]),
                              b.slice(full, [axis + 1], [rank], [0], hint=f"{c.hint}_post")],
                   f"{c.hint}_grouped_shape", axis=0)
    y = b.op("Reshape", [x, grouped], f"{c.hint}_grouped")
    reduce = [i for i in range(1, rank + 1) if i != axis]
    mean = b.reduce("ReduceMean", y, reduce, True, f"{c.hint}_mean")
    yc = b.op("Sub", [y, mean], f"{c.hint}_centered")
    var = b.reduce("ReduceMean", b.op("Mul", [yc, yc], f"{c.hint}_sq"), reduce, True,
                   f"{c.hint}_var")
    std = b.op("Sqrt", [b.op("Add", [var, b.scalar(cfg["epsilon"], b.float_dtype)],
                             f"{c.hint}_vareps")], f"{c.hint}_std")
    y = b.op("Reshape", [b.op("Div", [yc, std], f"{c.hint}_normed"), full], f"{c.hint}_back")
    bshape = tuple(shape[axis] if i == axis else 1 for i in range(1, rank))
    for name, op_type in (("gamma", "Mul"), ("beta", "Add")):
        if name in layer.weights:
            y = b.op(op_type, [y, _weight(c, f"{name}_r{rank}",
                                          lambda n=name: layer.weights[n].data.reshape(bshape))],
                     f"{c.hint}_{name}")
    return [b.op("Identity", [y], c.hint)]


def unit_normalization(c):
    b, layer = c.builder, c.layer
    x = c.inputs[0]
    axes = list(layer._axes(len(c.input_shapes[0])))
    sums = b.reduce("ReduceSum", b.op("Mul", [x, x], f"{c.hint}_sq"), axes, True,
                    f"{c.hint}_sumsq")
    inv = b.op("Reciprocal", [b.op("Sqrt", [sums], f"{c.hint}_norm")], f"{c.hint}_inv")
    inv = b.op("Min", [inv, b.scalar(1e12, b.float_dtype)], f"{c.hint}_capped")
    return [b.op("Mul", [x, inv], c.hint)]


def rescaling(c):
    b, layer = c.builder, c.layer
    y = b.op("Mul", [_float_input(c), _weight(c, "scale", lambda: layer._constant("scale"))],
             f"{c.hint}_scaled")
    return [b.op("Add", [y, _weight(c, "offset", lambda: layer._constant("offset"))], c.hint)]


def normalization(c):
    """Statistics folded at export: ``(x - mean) / max(sqrt(variance), 1e-7)``."""
    from ..layers.normalization import EPSILON
    b, layer = c.builder, c.layer
    rank = len(c.input_shapes[0])
    kept = layer.kept_axes(rank)
    bshape = tuple(c.input_shapes[0][i] if i in kept else 1 for i in range(1, rank))
    tag = f"r{rank}"
    mean = _weight(c, f"mean_{tag}", lambda: layer.weights["mean"].data.reshape(bshape))
    std = _weight(c, f"std_{tag}", lambda: np.maximum(
        np.sqrt(layer.weights["variance"].data.astype(np.float64)), EPSILON).reshape(bshape))
    x = _float_input(c)
    if layer.config["invert"]:
        return [b.op("Add", [mean, b.op("Mul", [x, std], f"{c.hint}_scaled")], c.hint)]
    return [b.op("Div", [b.op("Sub", [x, mean], f"{c.hint}_centered"), std], c.hint)]


def identity(c):
    return [c.builder.op("Identity", [c.inputs[0]], c.hint)]


ZOO_ATTENTION_CHECKS = {"MultiHeadAttention": mha_refusal}

ZOO_ATTENTION_CONVERTERS = {
    "MultiHeadAttention": multi_head_attention, "Attention": attention,
    "AdditiveAttention": attention, "GroupNormalization": group_normalization,
    "UnitNormalization": unit_normalization, "Rescaling": rescaling,
    "Normalization": normalization, "SpatialDropout1D": identity,
    "SpatialDropout2D": identity, "GaussianNoise": identity, "GaussianDropout": identity,
}
