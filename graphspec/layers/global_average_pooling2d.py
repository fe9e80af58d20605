"""GlobalAveragePooling2D: mean over height and width, (B, H, W, C) -> (B, C)."""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer, single_shape


def global_pool_shape(layer: Layer, input_shapes: list) -> list:
    shape = single_shape(layer, input_shapes)
    if len(shape) != 4:
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' expects input of rank 4 "
                         f"(batch, height, width, channels), got shape {shape}")
    if layer.keepdims:
        return [(shape[0], 1, 1, shape[3])]
    return [(shape[0], shape[3])]


class GlobalAveragePooling2D(Layer):
    TYPE = "GlobalAveragePooling2D"
    DOC = "Mean over height and width: (H, W, C) -> (C,), or (1, 1, C) with keepdims."
    ARGS = {"keepdims": {"type": "boolean", "default": False}}

    def compute_output_shapes(self, input_shapes):
        return global_pool_shape(self, input_shapes)

    def forward(self, inputs, ctx):
        return [ops.mean(inputs[0], axis=(1, 2), keepdims=self.keepdims)]
