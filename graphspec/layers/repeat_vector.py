"""RepeatVector: Repeats a (batch, features) input n times: (batch, n, features)."""
from __future__ import annotations


from .. import ops
from ..errors import ShapeError
from .base import POSITIVE_INT, Layer, single_shape


class RepeatVector(Layer):
    TYPE = "RepeatVector"
    DOC = "Repeats a (batch, features) input n times: (batch, n, features)."
    ARGS = {"n": POSITIVE_INT}
    REQUIRED = ("n",)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if len(shape) != 2:
            raise ShapeError(f"RepeatVector '{self.name}' expects (batch, features), "
                             f"got {shape}")
        return [(shape[0], self.n, shape[1])]

    def forward(self, inputs, ctx):
        x = ops.expand_dims(inputs[0], 1)
        return [ops.concatenate([x] * self.n, axis=1)]
