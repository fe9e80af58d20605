"""GaussianDropout: multiplies by N(1, sqrt(rate / (1 - rate))) noise while training
(Keras 3); identity at inference. Seeded through the run's random generator."""
from __future__ import annotations

import math

from .. import ops
from ..autodiff import Variable
from .base import Layer, single_shape


class GaussianDropout(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "GaussianDropout"
    DOC = "Multiplicative N(1, sqrt(rate / (1 - rate))) noise while training (Keras 3)."
    ARGS = {"rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}}
    REQUIRED = ("rate",)

    def compute_output_shapes(self, input_shapes):
        return [single_shape(self, input_shapes)]

    def forward(self, inputs, ctx):
        x = inputs[0]
        if not ctx.training or self.rate == 0:
            return [x]
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = ctx.rng.standard_normal(x.shape) * stddev + 1.0
        return [ops.mul(x, Variable(noise.astype(x.dtype)))]
