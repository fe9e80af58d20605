"""Conv2DTranspose: the transposed ("deconvolution") 2-D convolution, Keras' arguments,
output sizes and weight layout.

Kernel ``(kh, kw, filters, in_channels)`` (filters first, as Keras), bias ``(filters,)``.
Output size per axis: ``valid``: ``(n-1)*s + k_eff + output_padding`` (output_padding
default ``max(k_eff, s) - k_eff``); ``same``: ``n*s``, or ``(n-1)*s + k_eff % 2 +
output_padding`` when output_padding is given. ``output_padding`` must be below the
stride (Keras' rule). The op is ``graphspec.ops.conv_transpose``.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from ..ops.conv_transpose import conv2d_transpose, transpose_length
from .base import NON_NEGATIVE_INT, WeightSpec, single_shape
from .conv2d import ConvBase, layer_tuple
from .data_format import data_format_aware


@data_format_aware
class Conv2DTranspose(ConvBase):
    TYPE = "Conv2DTranspose"
    DOC = ("Transposed 2-D convolution (strides enlarge); kernel (kh, kw, filters, "
           "in_channels); padding valid or same; optional output_padding.")
    RANK = 2
    ARGS = {k: v for k, v in ConvBase.conv_args(2, ["valid", "same"]).items()
            if k != "groups"}
    ARGS["output_padding"] = {
        "oneOf": [NON_NEGATIVE_INT, {"type": "array", "items": NON_NEGATIVE_INT,
                                     "minItems": 2, "maxItems": 2}, {"type": "null"}],
        "default": None}

    def extra(self) -> tuple:
        """output_padding per axis (None: Keras' default), each below its stride."""
        if self.output_padding is None:
            return (None, None)
        value = self.output_padding
        extra = tuple(value) if isinstance(value, list) else (value, value)
        strides = layer_tuple(self, "strides", 2)
        if len(extra) != 2 or any(e >= s for e, s in zip(extra, strides)):
            raise ShapeError(f"Conv2DTranspose layer '{self.name}': output_padding "
                             f"{value!r} must be below the strides {list(strides)} on every "
                             "axis")
        return extra

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        kernel, strides, dilation = self.geometry()
        if len(shape) != 4:
            raise ShapeError(f"Conv2DTranspose layer '{self.name}' expects input of rank 4 "
                             f"(batch, height, width, channels), got shape {shape}")
        if shape[-1] is None:
            raise ShapeError(f"Conv2DTranspose layer '{self.name}' needs a known channel "
                             f"axis (the last one) to size its kernel, got input shape "
                             f"{shape}")
        sizes = tuple(transpose_length(n, k, s, self.padding, e, d) for n, k, s, e, d in
                      zip(shape[1:3], kernel, strides, self.extra(), dilation))
        return [(shape[0],) + sizes + (self.filters,)]

    def weight_specs(self, input_shapes):
        kernel, _, _ = self.geometry()
        specs = [WeightSpec("kernel", kernel + (self.filters, input_shapes[0][-1]),
                            self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def forward(self, inputs, ctx):
        _, strides, dilation = self.geometry()
        extra = self.extra()
        y = conv2d_transpose(inputs[0], self.weights["kernel"],
                             self.weights["bias"] if self.use_bias else None,
                             strides=strides, padding=self.padding,
                             output_padding=None if extra[0] is None else extra,
                             dilation=dilation)
        return [ops.ACTIVATIONS[self.activation](y)]
