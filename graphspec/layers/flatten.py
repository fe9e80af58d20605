"""Flatten: Flattens every axis but the batch axis."""
from __future__ import annotations


from .. import ops
from .base import Layer, known_feature_size, single_shape
from .data_format import data_format_aware


@data_format_aware
class Flatten(Layer):
    TYPE = "Flatten"
    DOC = "Flattens every axis but the batch axis."

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        return [(shape[0], known_feature_size(shape, self))]

    def forward(self, inputs, ctx):
        x = inputs[0]
        return [ops.reshape(x, (x.shape[0], -1))]
