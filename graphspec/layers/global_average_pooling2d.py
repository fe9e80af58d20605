"""GlobalAveragePooling2D: mean over height and width, (B, H, W, C) -> (B, C)."""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer, single_shape
from .data_format import data_format_aware


def global_pool_shape(layer: Layer, input_shapes: list, rank: int = 2) -> list:
    """(batch, channels), or with ``keepdims`` (batch, 1, ..., channels), for a pool over
    the ``rank`` spatial axes of a (batch, *spatial, channels) input."""
    shape = single_shape(layer, input_shapes)
    if len(shape) != rank + 2:
        expected = "(batch, steps, channels)" if rank == 1 else \
            "(batch, height, width, channels)"
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' expects input of rank "
                         f"{rank + 2} {expected}, got shape {shape}")
    if layer.keepdims:
        return [(shape[0],) + (1,) * rank + (shape[-1],)]
    return [(shape[0], shape[-1])]


@data_format_aware
class GlobalAveragePooling2D(Layer):
    TYPE = "GlobalAveragePooling2D"
    DOC = "Mean over height and width: (H, W, C) -> (C,), or (1, 1, C) with keepdims."
    ARGS = {"keepdims": {"type": "boolean", "default": False}}

    def compute_output_shapes(self, input_shapes):
        return global_pool_shape(self, input_shapes)

    def forward(self, inputs, ctx):
        return [ops.mean(inputs[0], axis=(1, 2), keepdims=self.keepdims)]
