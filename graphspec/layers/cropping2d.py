"""Cropping2D: drop rows and columns at the borders of (height, width, channels) inputs.

cropping: an int (all four sides), [rows, cols] (symmetric), or
[[top, bottom], [left, right]]. Default 0.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer
from .zero_padding2d import BORDERS, borders, image_shape
from .data_format import data_format_aware


@data_format_aware
class Cropping2D(Layer):
    TYPE = "Cropping2D"
    DOC = ("Drops border rows and columns: int, [rows, cols] or "
           "[[top, bottom], [left, right]].")
    ARGS = {"cropping": dict(BORDERS, default=0)}

    def crops(self) -> tuple:
        return borders(self, "cropping")

    def compute_output_shapes(self, input_shapes):
        shape = image_shape(self, input_shapes)
        out = [shape[0]]
        for axis, (before, after) in enumerate(self.crops(), start=1):
            if shape[axis] is not None and shape[axis] - before - after < 1:
                raise ShapeError(f"Cropping2D layer '{self.name}': cropping "
                                 f"{self.config['cropping']!r} leaves nothing of input shape "
                                 f"{shape}")
            out.append(None if shape[axis] is None else shape[axis] - before - after)
        return [tuple(out) + (shape[3],)]

    def forward(self, inputs, ctx):
        x = inputs[0]
        (top, bottom), (left, right) = self.crops()
        if top + bottom >= x.shape[1] or left + right >= x.shape[2]:
            raise ShapeError(f"Cropping2D layer '{self.name}': cropping "
                             f"{self.config['cropping']!r} leaves nothing of an input of "
                             f"shape {x.shape}")
        return [ops.getitem(x, (slice(None), slice(top, x.shape[1] - bottom),
                                slice(left, x.shape[2] - right)))]
