"""Cropping1D: drop steps at the start and end of (steps, channels) inputs.

cropping: an int (both ends) or [start, end]. Default [1, 1].
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import NON_NEGATIVE_INT, Layer
from .zero_padding1d import PAIR, pair, steps_input


class Cropping1D(Layer):
    TYPE = "Cropping1D"
    DOC = "Drops steps at both ends of (steps, channels): int or [start, end]."
    ARGS = {"cropping": {"oneOf": [NON_NEGATIVE_INT, PAIR], "default": [1, 1]}}

    def pair(self, key: str) -> tuple:
        return pair(self, key)

    def compute_output_shapes(self, input_shapes):
        shape = steps_input(self, input_shapes)
        start, end = pair(self, "cropping")
        if shape[1] is None:
            return [shape]
        length = shape[1] - start - end
        if length < 1:
            raise ShapeError(f"Cropping1D layer '{self.name}': cropping {[start, end]} "
                             f"leaves no steps of input shape {shape}")
        return [(shape[0], length, shape[2])]

    def forward(self, inputs, ctx):
        x = inputs[0]
        start, end = pair(self, "cropping")
        if start + end >= x.shape[1]:
            raise ShapeError(f"Cropping1D layer '{self.name}': cropping {[start, end]} "
                             f"leaves no steps of an input with {x.shape[1]}")
        return [ops.getitem(x, (slice(None), slice(start, x.shape[1] - end)))]
