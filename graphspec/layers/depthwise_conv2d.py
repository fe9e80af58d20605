"""DepthwiseConv2D: one set of ``depth_multiplier`` filters per input channel, Keras'
arguments and weight layout.

Kernel ``(kh, kw, in_channels, depth_multiplier)``, bias ``(in_channels *
depth_multiplier,)``; output channel ``c * depth_multiplier + m`` comes from input channel
``c`` (TensorFlow's order). The op is ``graphspec.ops.depthwise``.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from ..ops.depthwise import depthwise_conv2d
from .base import POSITIVE_INT, WeightSpec, single_shape
from .common_args import ACTIVATION, REGULARIZER, initializer
from .conv2d import ConvBase, int_or_tuple, spatial_output
from .data_format import data_format_aware


def depthwise_args() -> dict:
    return {
        "kernel_size": int_or_tuple(2),
        "strides": int_or_tuple(2, default=1),
        "padding": {"enum": ["valid", "same"], "default": "valid"},
        "depth_multiplier": dict(POSITIVE_INT, default=1),
        "dilation_rate": int_or_tuple(2, default=1),
        "activation": ACTIVATION,
        "use_bias": {"type": "boolean", "default": True},
        "depthwise_initializer": initializer("glorot_uniform"),
        "bias_initializer": initializer("zeros"),
        "depthwise_regularizer": REGULARIZER,
        "bias_regularizer": REGULARIZER,
        "activity_regularizer": REGULARIZER,
    }


@data_format_aware
class DepthwiseConv2D(ConvBase):
    TYPE = "DepthwiseConv2D"
    DOC = ("Per-channel 2-D convolution: kernel (kh, kw, in_channels, depth_multiplier), "
           "output channels in_channels * depth_multiplier.")
    RANK = 2
    REQUIRED = ("kernel_size",)
    ARGS = depthwise_args()
    REGULARIZED_WEIGHTS = {"depthwise_regularizer": "kernel", "bias_regularizer": "bias"}

    def depthwise_output(self, input_shapes) -> tuple:
        """Output shape of the depthwise step; the channel axis must be known."""
        shape = single_shape(self, input_shapes)
        kernel, strides, dilation = self.geometry()
        sizes = spatial_output(self, shape, 2, kernel, strides, self.padding, dilation)
        if shape[-1] is None:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs a known channel axis "
                             f"(the last one) to size its kernel, got input shape {shape}")
        return (shape[0],) + sizes + (shape[-1] * self.depth_multiplier,)

    def compute_output_shapes(self, input_shapes):
        return [self.depthwise_output(input_shapes)]

    def weight_specs(self, input_shapes):
        kernel, _, _ = self.geometry()
        channels = input_shapes[0][-1]
        specs = [WeightSpec("kernel", kernel + (channels, self.depth_multiplier),
                            self.depthwise_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (channels * self.depth_multiplier,),
                                    self.bias_initializer))
        return specs

    def forward(self, inputs, ctx):
        _, strides, dilation = self.geometry()
        y = depthwise_conv2d(inputs[0], self.weights["kernel"],
                             self.weights["bias"] if self.use_bias else None,
                             strides=strides, padding=self.padding, dilation=dilation)
        return [ops.ACTIVATIONS[self.activation](y)]
