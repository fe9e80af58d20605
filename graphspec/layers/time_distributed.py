"""TimeDistributed: apply a layer or a whole model to every timestep of a sequence.

The wrapped layer (or sub-model) is called once on ``(batch * steps, ...)``: the batch
and time axes are folded together, so its weights are shared across time and no Python
loop runs over timesteps. Reference items 4 and 10.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer


class TimeDistributed(Layer):
    TYPE = "TimeDistributed"
    DOC = "Applies the wrapped layer or model to every timestep (axis 1) of its input."
    ARGS = {"layer": {"description": "the wrapped layer or model: a name or an inline layer"}}
    REQUIRED = ("layer",)
    WRAPS = ("layer",)

    @property
    def inner(self):
        return self.config["layer"]

    def sublayers(self):
        return [self.inner]

    def _inner_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        shape = tuple(input_shapes[0])
        if len(shape) < 3:
            raise ShapeError(f"TimeDistributed '{self.name}' needs (batch, steps, ...) input, "
                             f"got {shape}")
        return shape[1], [(None,) + shape[2:]]

    def compute_output_shapes(self, input_shapes):
        steps, inner_shapes = self._inner_shapes(input_shapes)
        out = self.inner.compute_output_shapes(inner_shapes)
        return [(None, steps) + tuple(s[1:]) for s in out]

    def register_weights(self, input_shapes):
        self.inner.register_weights(self._inner_shapes(input_shapes)[1])

    def param_count(self):
        return 0, 0   # the wrapped layer counts its own weights

    def forward(self, inputs, ctx):
        x = inputs[0]
        batch, steps = x.shape[0], x.shape[1]
        folded = ops.reshape(x, (batch * steps,) + x.shape[2:])
        return [ops.reshape(y, (batch, steps) + y.shape[1:])
                for y in self.inner.forward([folded], ctx)]
