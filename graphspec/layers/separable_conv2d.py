"""SeparableConv2D: a depthwise convolution then a 1x1 convolution mixing channels,
Keras' arguments and weights.

Weights ``depthwise_kernel (kh, kw, in_channels, depth_multiplier)``,
``pointwise_kernel (1, 1, in_channels * depth_multiplier, filters)`` and ``bias
(filters,)``; no bias between the two steps (as Keras).
"""
from __future__ import annotations

from .. import ops
from ..ops.conv import conv2d
from ..ops.depthwise import depthwise_conv2d
from .base import POSITIVE_INT, WeightSpec
from .common_args import REGULARIZER, initializer
from .depthwise_conv2d import DepthwiseConv2D, depthwise_args
from .data_format import data_format_aware


@data_format_aware
class SeparableConv2D(DepthwiseConv2D):
    TYPE = "SeparableConv2D"
    DOC = ("Depthwise 2-D convolution followed by a 1x1 convolution to filters channels "
           "(depthwise_kernel, pointwise_kernel, bias).")
    REQUIRED = ("filters", "kernel_size")
    ARGS = {"filters": POSITIVE_INT, **depthwise_args(),
            "pointwise_initializer": initializer("glorot_uniform"),
            "pointwise_regularizer": REGULARIZER}
    REGULARIZED_WEIGHTS = {"depthwise_regularizer": "depthwise_kernel",
                           "pointwise_regularizer": "pointwise_kernel",
                           "bias_regularizer": "bias"}

    def compute_output_shapes(self, input_shapes):
        return [self.depthwise_output(input_shapes)[:-1] + (self.filters,)]

    def weight_specs(self, input_shapes):
        kernel, _, _ = self.geometry()
        channels = input_shapes[0][-1]
        specs = [WeightSpec("depthwise_kernel", kernel + (channels, self.depth_multiplier),
                            self.depthwise_initializer),
                 WeightSpec("pointwise_kernel",
                            (1, 1, channels * self.depth_multiplier, self.filters),
                            self.pointwise_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def forward(self, inputs, ctx):
        _, strides, dilation = self.geometry()
        mixed = depthwise_conv2d(inputs[0], self.weights["depthwise_kernel"], None,
                                 strides=strides, padding=self.padding, dilation=dilation)
        fused = self.activation == "relu"
        y = conv2d(mixed, self.weights["pointwise_kernel"],
                   self.weights["bias"] if self.use_bias else None,
                   activation="relu" if fused else None)
        return [y if fused else ops.ACTIVATIONS[self.activation](y)]
