"""GlobalAveragePooling1D: mean over the steps, (B, T, C) -> (B, C), or (B, 1, C) with
keepdims."""
from __future__ import annotations

from .. import ops
from .base import Layer
from .global_average_pooling2d import global_pool_shape
from .data_format import data_format_aware


@data_format_aware
class GlobalAveragePooling1D(Layer):
    TYPE = "GlobalAveragePooling1D"
    DOC = "Mean over steps: (T, C) -> (C,), or (1, C) with keepdims."
    ARGS = {"keepdims": {"type": "boolean", "default": False}}

    def compute_output_shapes(self, input_shapes):
        return global_pool_shape(self, input_shapes, rank=1)

    def forward(self, inputs, ctx):
        return [ops.mean(inputs[0], axis=1, keepdims=self.keepdims)]
