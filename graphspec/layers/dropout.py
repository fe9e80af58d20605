"""Dropout: zero a ``rate`` fraction of inputs while training, scale the rest by
``1/(1-rate)`` (inverted dropout, as Keras); identity at inference."""
from __future__ import annotations

from .. import ops
from ..autodiff import Variable
from ..errors import ShapeError
from .base import Layer, single_shape


class Dropout(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "Dropout"
    DOC = "Inverted dropout; seeded through the run's random generator."
    ARGS = {"rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "noise_shape": {"type": ["array", "null"], "default": None,
                            "items": {"type": ["integer", "null"]},
                            "description": "broadcast shape of the mask, batch included"}}
    REQUIRED = ("rate",)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if self.noise_shape is not None:
            fits = len(self.noise_shape) == len(shape) and all(
                n is None or n == 1 or d is None or n == d
                for n, d in zip(self.noise_shape, shape))
            if not fits:
                raise ShapeError(f"Dropout '{self.name}': noise_shape {self.noise_shape} must "
                                 f"have one entry per axis of {shape} (batch included), each "
                                 "null, 1 or that axis' size")
        return [shape]

    def forward(self, inputs, ctx):
        x = inputs[0]
        if not ctx.training or self.rate == 0:
            return [x]
        shape = x.shape if self.noise_shape is None else tuple(
            n if n is not None else d for n, d in zip(self.noise_shape, x.shape))
        return [drop(x, self.rate, shape, ctx.rng)]


def drop(x, rate: float, shape, rng):
    """``x`` times an inverted-dropout mask drawn at ``shape`` (broadcast to ``x``):
    Dropout's and SpatialDropout's training-time computation."""
    keep = (rng.random(shape) >= rate).astype(x.dtype) / x.dtype.type(1 - rate)
    return ops.mul(x, Variable(keep))
