"""Reshape: Reshapes the features to target_shape (batch excluded; one -1 allowed)."""
from __future__ import annotations

import math


from .. import ops
from ..errors import ShapeError
from .base import Layer, known_feature_size, single_shape


class Reshape(Layer):
    TYPE = "Reshape"
    DOC = "Reshapes the features to target_shape (batch excluded; one -1 allowed)."
    ARGS = {"target_shape": {"type": "array", "minItems": 1,
                             "items": {"type": "integer", "minimum": -1, "maximum": 1 << 24}}}
    REQUIRED = ("target_shape",)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        size = known_feature_size(shape, self)
        target = list(self.target_shape)
        if target.count(-1) > 1 or 0 in target:
            raise ShapeError(f"Reshape '{self.name}': target_shape {tuple(target)} may hold "
                             "at most one -1 and no 0")
        known = math.prod(t for t in target if t != -1)
        if -1 in target:
            if size % known:
                raise ShapeError(f"Reshape '{self.name}': cannot reshape {shape[1:]} "
                                 f"({size} values) into {tuple(target)}")
            target[target.index(-1)] = size // known
        elif known != size:
            raise ShapeError(f"Reshape '{self.name}': cannot reshape {shape[1:]} ({size} "
                             f"values) into {tuple(target)} ({known} values)")
        return [(shape[0],) + tuple(target)]

    def forward(self, inputs, ctx):
        x = inputs[0]
        return [ops.reshape(x, (x.shape[0],) + tuple(self.target_shape))]
