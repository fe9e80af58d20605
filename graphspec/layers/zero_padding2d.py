"""ZeroPadding2D: zero rows and columns around (height, width, channels) inputs.

padding: an int (all four sides), [rows, cols] (symmetric), or
[[top, bottom], [left, right]]. Default 1. Cropping2D reads its ``cropping`` the same way.
"""
from __future__ import annotations

from ..errors import ShapeError
from ..ops.conv import zero_pad2d
from .base import NON_NEGATIVE_INT, Layer, single_shape
from .data_format import data_format_aware

PAIR = {"type": "array", "items": NON_NEGATIVE_INT, "minItems": 2, "maxItems": 2}
BORDERS = {"oneOf": [NON_NEGATIVE_INT, PAIR,
                     {"type": "array", "items": PAIR, "minItems": 2, "maxItems": 2}]}


def borders(layer: Layer, key: str) -> tuple:
    """``layer.config[key]`` (int, [rows, cols] or [[top, bottom], [left, right]]) as
    ((top, bottom), (left, right)), or a ShapeError naming the layer."""
    p = layer.config[key]
    try:
        if isinstance(p, int):
            pads = ((p, p), (p, p))
        elif all(isinstance(v, int) for v in p) and len(p) == 2:
            pads = ((p[0], p[0]), (p[1], p[1]))
        else:
            pads = tuple((int(a), int(b)) for a, b in p)
            if len(pads) != 2:
                raise ValueError
    except (TypeError, ValueError):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': {key} must be an int, "
                         f"[rows, cols] or [[top, bottom], [left, right]], got {p!r}") \
            from None
    if any(v < 0 for pair in pads for v in pair):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': {key} must not be "
                         f"negative, got {p!r}")
    return pads


def image_shape(layer: Layer, input_shapes: list) -> tuple:
    shape = single_shape(layer, input_shapes)
    if len(shape) != 4:
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' expects input of rank 4 "
                         f"(batch, height, width, channels), got shape {shape}")
    return shape


@data_format_aware
class ZeroPadding2D(Layer):
    TYPE = "ZeroPadding2D"
    DOC = ("Zero padding of height and width: int, [rows, cols] or "
           "[[top, bottom], [left, right]].")
    ARGS = {"padding": dict(BORDERS, default=1)}

    def pads(self) -> tuple:
        return borders(self, "padding")

    def compute_output_shapes(self, input_shapes):
        shape = image_shape(self, input_shapes)
        (top, bottom), (left, right) = self.pads()
        height = None if shape[1] is None else shape[1] + top + bottom
        width = None if shape[2] is None else shape[2] + left + right
        return [(shape[0], height, width, shape[3])]

    def forward(self, inputs, ctx):
        return [zero_pad2d(inputs[0], self.pads())]
