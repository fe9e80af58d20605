"""SpatialDropout1D: Dropout of whole feature channels of a (steps, channels) input,
one draw per sample and channel, shared by every step (Keras 3); identity at inference."""
from __future__ import annotations

from ..errors import ShapeError
from .base import Layer, single_shape
from .dropout import drop

RATE = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}


class SpatialDropout1D(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "SpatialDropout1D"
    DOC = "Drops whole channels of (steps, channels) inputs while training (Keras 3)."
    ARGS = {"rate": RATE}
    REQUIRED = ("rate",)
    RANK = 3

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if len(shape) != self.RANK:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs inputs of rank "
                             f"{self.RANK} (batch included), got shape {shape}")
        return [shape]

    def noise_shape(self, shape) -> tuple:
        """One draw per sample and channel (channels last)."""
        return (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)

    def forward(self, inputs, ctx):
        x = inputs[0]
        if not ctx.training or self.rate == 0:
            return [x]
        return [drop(x, self.rate, self.noise_shape(x.shape), ctx.rng)]
