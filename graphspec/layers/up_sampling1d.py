"""UpSampling1D: each step repeated ``size`` times, (B, T, C) -> (B, T*size, C)."""
from __future__ import annotations

from ..ops.resize import repeat
from .base import POSITIVE_INT, Layer
from .zero_padding1d import steps_input


class UpSampling1D(Layer):
    TYPE = "UpSampling1D"
    DOC = "Repeats each step size times: (T, C) -> (T * size, C)."
    ARGS = {"size": dict(POSITIVE_INT, default=2)}

    def compute_output_shapes(self, input_shapes):
        shape = steps_input(self, input_shapes)
        return [(shape[0], None if shape[1] is None else shape[1] * self.size, shape[2])]

    def forward(self, inputs, ctx):
        return [repeat(inputs[0], self.size, axis=1)]
