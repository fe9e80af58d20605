"""UpSampling1D: each step repeated ``size`` times, (B, T, C) -> (B, T*size, C)."""
from __future__ import annotations

from ..errors import ShapeError
from ..ops.resize import repeat
from .base import MAX_DIM, POSITIVE_INT, Layer
from .zero_padding1d import steps_input


def capped(layer: Layer, shape: tuple) -> tuple:
    """``shape``, or a ShapeError if a layer that enlarges its input (upsampling,
    transposed convolution, padding) would make an axis longer than MAX_DIM: refused at
    compile time rather than as a MemoryError at the first batch."""
    for d in shape[1:]:
        if d is not None and d > MAX_DIM:
            raise ShapeError(f"{layer.TYPE} layer '{layer.name}': output shape {shape} has "
                             f"an axis longer than the {MAX_DIM} limit")
    return shape


class UpSampling1D(Layer):
    TYPE = "UpSampling1D"
    DOC = "Repeats each step size times: (T, C) -> (T * size, C)."
    ARGS = {"size": dict(POSITIVE_INT, default=2)}

    def compute_output_shapes(self, input_shapes):
        shape = steps_input(self, input_shapes)
        return [capped(self, (shape[0], None if shape[1] is None else shape[1] * self.size,
                              shape[2]))]

    def forward(self, inputs, ctx):
        return [repeat(inputs[0], self.size, axis=1)]
