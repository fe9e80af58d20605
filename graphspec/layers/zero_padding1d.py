"""ZeroPadding1D: zero steps before and after (steps, channels) inputs.

padding: an int (both sides) or [left, right]. Default 1.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import NON_NEGATIVE_INT, Layer, single_shape
from .data_format import data_format_aware

PAIR = {"type": "array", "items": NON_NEGATIVE_INT, "minItems": 2, "maxItems": 2}


def pair(layer: Layer, key: str) -> tuple:
    """An int-or-[before, after] argument as (before, after), or a located ShapeError."""
    value = layer.config[key]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, list) and len(value) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': {key} must be a non-negative "
                         f"int or [before, after], got {layer.config[key]!r}")
    return tuple(value)


def steps_input(layer: Layer, input_shapes: list) -> tuple:
    shape = single_shape(layer, input_shapes)
    if len(shape) != 3:
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' expects input of rank 3 "
                         f"(batch, steps, channels), got shape {shape}")
    return shape


@data_format_aware
class ZeroPadding1D(Layer):
    TYPE = "ZeroPadding1D"
    DOC = "Zero steps before and after (steps, channels): int or [left, right]."
    ARGS = {"padding": {"oneOf": [NON_NEGATIVE_INT, PAIR], "default": 1}}

    def pair(self, key: str) -> tuple:
        return pair(self, key)

    def compute_output_shapes(self, input_shapes):
        shape = steps_input(self, input_shapes)
        left, right = pair(self, "padding")
        return [(shape[0], None if shape[1] is None else shape[1] + left + right, shape[2])]

    def forward(self, inputs, ctx):
        return [ops.pad(inputs[0], ((0, 0), pair(self, "padding"), (0, 0)))]
