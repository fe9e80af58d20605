"""ELU: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
from __future__ import annotations

from ..ops.activations import elu
from .base import Layer, single_shape


class ELU(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "ELU"
    DOC = "Exponential linear unit: x if x > 0 else alpha * (exp(x) - 1)."
    ARGS = {"alpha": {"type": "number", "default": 1.0}}

    def compute_output_shapes(self, input_shapes):
        return [single_shape(self, input_shapes)]

    def forward(self, inputs, ctx):
        return [elu(inputs[0], self.alpha)]
