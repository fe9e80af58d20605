"""LeakyReLU: ``x`` if ``x > 0`` else ``negative_slope * x``. Keras 3's argument name and
default (0.3; the ``leaky_relu`` activation function's default is 0.2)."""
from __future__ import annotations

from ..ops.activations import leaky_relu
from .base import Layer, single_shape


class LeakyReLU(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "LeakyReLU"
    DOC = "x if x > 0 else negative_slope * x (Keras 3 default negative_slope 0.3)."
    ARGS = {"negative_slope": {"type": "number", "minimum": 0, "default": 0.3}}

    def compute_output_shapes(self, input_shapes):
        return [single_shape(self, input_shapes)]

    def forward(self, inputs, ctx):
        return [leaky_relu(inputs[0], self.negative_slope)]
