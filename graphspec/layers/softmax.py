"""Softmax: normalised exponentials over ``axis`` (an int, or a list of axes normalised
together, as Keras' Softmax layer allows)."""
from __future__ import annotations

from ..errors import ShapeError
from ..ops.activations import softmax
from .base import Layer, single_shape

AXIS = {"type": "integer", "minimum": -64, "maximum": 64}


class Softmax(Layer):
    TYPE = "Softmax"
    DOC = "Softmax over axis (default -1); a list of axes normalises over all of them."
    ARGS = {"axis": {"oneOf": [AXIS, {"type": "array", "items": AXIS, "minItems": 1}],
                     "default": -1}}

    def axes(self, rank: int) -> tuple:
        written = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in written:
            if not -rank <= axis < rank or axis % rank == 0:
                raise ShapeError(f"Softmax layer '{self.name}': axis {axis} is not a feature "
                                 f"axis of a rank-{rank} input (batch axis 0 excluded)")
        return tuple(sorted({a % rank for a in written}))

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        self.axes(len(shape))
        return [shape]

    def forward(self, inputs, ctx):
        return [softmax(inputs[0], axis=self.axes(inputs[0].data.ndim))]
