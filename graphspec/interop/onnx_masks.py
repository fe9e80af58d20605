"""Masks in ONNX: the boolean step masks of ``Embedding(mask_zero)`` and ``Masking``
built as ONNX tensors and carried beside the values as ``Model.run_with_masks`` carries
them, and the layers that use them.

- :func:`output_masks`: the masks of a call's outputs, the ONNX form of the layer's
  ``compute_mask`` (made by Embedding and Masking, OR-ed by the merges, joined by
  Concatenate, dropped by Dot and the poolings, passed on by the rest).
- :func:`mask_refusal`: the up-front check. A layer that *uses* a mask (``USES_MASK``)
  exports only if its converter reproduces graphspec's masked arithmetic exactly
  (``MASKED``); any other is refused by name, with the word mask, before anything is
  built. ``BatchNormalization`` uses its mask in training only, so it exports as is.
- The masked forms of GlobalAveragePooling1D, Softmax and Masking's values (attention:
  onnx_zoo_attention; the recurrent layers: onnx_unrolled, unrolled or one Scan).
"""
from __future__ import annotations

import numpy as np

from ..layers.merging import ElementwiseMerge


# -- the masks --------------------------------------------------------------------------
def _keep_any(b, not_equal: str, hint: str) -> str:
    """``any(not_equal, axis=-1)`` of a boolean tensor."""
    as_float = b.cast(not_equal, b.float_dtype, f"{hint}_float")
    return b.cast(b.reduce("ReduceMax", as_float, [-1], False, f"{hint}_any"), np.bool_,
                  hint)


def made_mask(b, layer, x: str, dtype, hint: str) -> str:
    """The mask Embedding(mask_zero) or Masking makes from its input ``x``."""
    if layer.TYPE == "Embedding":        # indices != 0, compared as given (compute_mask)
        return b.op("Not", [b.op("Equal", [x, b.scalar(0, dtype)], f"{hint}_padding")],
                    f"{hint}_mask")
    value = b.scalar(layer.config["mask_value"], b.float_dtype)
    return _keep_any(b, b.op("Not", [b.op("Equal", [x, value], f"{hint}_equal")],
                             f"{hint}_differs"), f"{hint}_mask")


def output_masks(b, layer, inputs: list, shapes: list, dtypes: list, masks: list,
                 count: int, hint: str) -> list:
    """The ONNX masks of one call's ``count`` outputs (None: no mask)."""
    if not layer.makes_mask() and not any(m is not None for m in masks):
        return [None] * count
    if layer.makes_mask():
        return [made_mask(b, layer, inputs[0], dtypes[0], hint)] + [None] * (count - 1)
    if isinstance(layer, ElementwiseMerge):
        if any(m is None for m in masks):
            return [None] * count
        out = masks[0]
        for i, m in enumerate(masks[1:]):
            out = b.op("Or", [out, m], f"{hint}_mask_or{i}")
        return [out]
    if layer.TYPE == "Concatenate":
        return [_concatenated(b, layer, inputs, shapes, masks, hint)]
    # the rest pass the first input's mask on where their compute_mask gives one
    labels = layer.mask_sources(["mask" if m is not None else None for m in masks], count)
    return [masks[0] if label is not None else None for label in labels]


def _concatenated(b, layer, inputs, shapes, masks, hint) -> str:
    """Keras' Concatenate.compute_mask: each mask spread over its input's last axis (an
    unmasked input: all True), joined along ``axis``, any over the last axis."""
    rank = len(shapes[0])
    full = []
    for i, (x, mask) in enumerate(zip(inputs, masks)):
        shape = b.op("Shape", [x], f"{hint}_mask_shape{i}")
        spread = b.scalar(True, np.bool_) if mask is None else \
            b.unsqueeze(mask, [-1], f"{hint}_mask_spread{i}")
        full.append(b.op("Expand", [spread, shape], f"{hint}_mask_full{i}"))
    joined = b.op("Concat", full, f"{hint}_mask_joined", axis=layer.config["axis"] % rank)
    return _keep_any(b, joined, f"{hint}_mask")


# -- which masked calls export ------------------------------------------------------------
def _rank3(layer, node, sources):
    if any(len(s) != 3 for s in node.input_shapes[:2]):
        return "its masked inputs are not (steps, features) sequences"
    return None


def _time_distributed(layer, node, sources):
    inner = layer.config["layer"]
    if getattr(inner, "USES_MASK", False) and getattr(inner, "TYPE", "") != "Model":
        return f"the mask would reach the wrapped {inner.TYPE} step by step"
    if getattr(inner, "TYPE", "") == "Model" and any(
            getattr(l, "USES_MASK", False) for l in inner.layers()):
        return "the mask would reach the wrapped model's layers step by step"
    return None


# USES_MASK types whose ONNX converter reproduces the masked arithmetic: type -> a check
# of the call (a reason it cannot, or None)
MASKED = {
    "GlobalAveragePooling1D": lambda layer, node, sources: None,
    "Softmax": lambda layer, node, sources: None,
    "BatchNormalization": lambda layer, node, sources: None,   # training only
    "MultiHeadAttention": _rank3, "Attention": _rank3, "AdditiveAttention": _rank3,
    # unrolled over known steps, else one ONNX Scan over time (onnx_unrolled)
    **{kind: (lambda layer, node, sources: None)
       for kind in ("SimpleRNN", "LSTM", "GRU", "Bidirectional")},
    "TimeDistributed": _time_distributed,
}


def mask_refusal(layer, node, sources: list) -> str | None:
    """Why ``layer`` cannot be exported given the masks (``sources``: the mask-making
    layer per input, or None) its call gets, or None."""
    if not getattr(layer, "USES_MASK", False) or not any(sources):
        return None
    made_by = next(s for s in sources if s)
    check = MASKED.get(layer.TYPE)
    if check is None:
        return (f"it uses the mask made by '{made_by}', and its ONNX export does not "
                "reproduce masked steps")
    reason = check(layer, node, sources)
    return None if reason is None else f"it uses the mask made by '{made_by}', but {reason}"


# -- masked converters ----------------------------------------------------------------------
def global_average_pooling1d(plain):
    """Keras' masked mean: ``sum(where(mask, x, 0)) / sum(mask)`` over the steps (0 / 0 =
    NaN for a fully masked row, as Keras and graphspec give)."""
    def convert(c):
        mask = c.mask(0)
        if mask is None:
            return plain(c)
        b, keepdims = c.builder, c.layer.config["keepdims"]
        keep = b.unsqueeze(mask, [2], f"{c.hint}_keep")
        kept = b.op("Where", [keep, c.inputs[0], b.scalar(0, b.float_dtype)],
                    f"{c.hint}_kept")
        total = b.reduce("ReduceSum", kept, [1], keepdims, f"{c.hint}_sum")
        count = b.reduce("ReduceSum", b.cast(keep, b.float_dtype, f"{c.hint}_ones"), [1],
                         keepdims, f"{c.hint}_count")
        return [b.op("Div", [total, count], c.hint)]
    return convert


def softmax(plain):
    """Keras' Softmax with a mask: masked inputs -1e9 first, their outputs 0 after (the
    mask broadcast against the input aligned on the right)."""
    def convert(c):
        mask = c.mask(0)
        if mask is None:
            return plain(c)
        from .onnx_zoo_attention import masked_softmax
        axes = c.layer.axes(len(c.input_shapes[0]))
        return [masked_softmax(c.builder, c.inputs[0], mask, "fill", axes, c.hint)]
    return convert


def masking(c):
    """Masking's values: the steps it masks set to 0 (``where``, as Keras)."""
    b = c.builder
    keep = made_mask(b, c.layer, c.inputs[0], c.input_dtypes[0], f"{c.hint}_values")
    return [b.op("Where", [b.unsqueeze(keep, [-1], f"{c.hint}_keep"), c.inputs[0],
                           b.scalar(0, b.float_dtype)], c.hint)]


def with_masks(converters: dict) -> dict:
    """``converters`` with the masked forms of the layers this module converts."""
    out = dict(converters)
    out["GlobalAveragePooling1D"] = global_average_pooling1d(converters["GlobalAveragePooling1D"])
    out["Softmax"] = softmax(converters["Softmax"])
    out["Masking"] = masking
    return out
