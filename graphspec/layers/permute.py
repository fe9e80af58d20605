"""Permute: Permutes feature axes; dims are 1-based and exclude the batch axis (Keras)."""
from __future__ import annotations


from .. import ops
from ..errors import ShapeError
from .base import Layer, single_shape


class Permute(Layer):
    TYPE = "Permute"
    DOC = "Permutes feature axes; dims are 1-based and exclude the batch axis (Keras)."
    ARGS = {"dims": {"type": "array", "minItems": 1,
                     "items": {"type": "integer", "minimum": 1, "maximum": 64}}}
    REQUIRED = ("dims",)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if sorted(self.dims) != list(range(1, len(shape))):
            raise ShapeError(f"Permute '{self.name}': dims {tuple(self.dims)} must be a "
                             f"permutation of 1..{len(shape) - 1} for input shape {shape}")
        return [(shape[0],) + tuple(shape[d] for d in self.dims)]

    def forward(self, inputs, ctx):
        return [ops.permute(inputs[0], (0,) + tuple(self.dims))]
