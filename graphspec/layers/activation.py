"""Activation: apply a named activation elementwise (softmax on ``axis``)."""
from __future__ import annotations

from .. import ops
from .base import Layer, single_shape
from .common_args import ACTIVATION


class Activation(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "Activation"
    DOC = "Applies a Keras activation by name."
    ARGS = {"activation": {k: v for k, v in ACTIVATION.items() if k != "default"},
            "axis": {"type": "integer", "default": -1,
                     "description": "softmax and log_softmax axis (other activations ignore it)"}}
    REQUIRED = ("activation",)

    def compute_output_shapes(self, input_shapes):
        return [single_shape(self, input_shapes)]

    def forward(self, inputs, ctx):
        if self.activation == "softmax":
            return [ops.softmax(inputs[0], axis=self.axis)]
        if self.activation == "log_softmax":
            return [ops.log_softmax(inputs[0], axis=self.axis)]
        return [ops.ACTIVATIONS[self.activation](inputs[0])]
