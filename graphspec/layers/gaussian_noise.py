"""GaussianNoise: adds N(0, stddev) noise while training (Keras 3); identity at
inference. Seeded through the run's random generator, as Dropout."""
from __future__ import annotations

from .. import ops
from ..autodiff import Variable
from .base import Layer, single_shape


class GaussianNoise(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "GaussianNoise"
    DOC = "Adds zero-mean Gaussian noise of standard deviation `stddev` while training."
    ARGS = {"stddev": {"type": "number", "minimum": 0}}
    REQUIRED = ("stddev",)

    def compute_output_shapes(self, input_shapes):
        return [single_shape(self, input_shapes)]

    def forward(self, inputs, ctx):
        x = inputs[0]
        if not ctx.training or self.stddev == 0:
            return [x]
        noise = ctx.rng.standard_normal(x.shape).astype(x.dtype) * x.dtype.type(self.stddev)
        return [ops.add(x, Variable(noise))]
