"""GlobalMaxPooling2D: maximum over height and width, (B, H, W, C) -> (B, C).

Tied maxima share the gradient equally (TensorFlow's reduce_max, PyTorch's amax).
"""
from __future__ import annotations

from ..ops.conv import global_max_pool2d
from .base import Layer
from .global_average_pooling2d import global_pool_shape
from .data_format import data_format_aware


@data_format_aware
class GlobalMaxPooling2D(Layer):
    TYPE = "GlobalMaxPooling2D"
    DOC = "Max over height and width: (H, W, C) -> (C,), or (1, 1, C) with keepdims."
    ARGS = {"keepdims": {"type": "boolean", "default": False}}

    def compute_output_shapes(self, input_shapes):
        return global_pool_shape(self, input_shapes)

    def forward(self, inputs, ctx):
        return [global_max_pool2d(inputs[0], self.keepdims)]
