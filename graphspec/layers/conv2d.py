"""Conv2D: 2-D convolution over channels-last images, Keras arguments and defaults.

Kernel HWIO ``(kh, kw, in_channels, filters)``, bias ``(filters,)``. The convolution is
im2col + one GEMM (``graphspec.ops.conv``); a ReLU activation is fused into it.
This file also holds what Conv1D shares: the argument schemas and the base class.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from ..ops.conv import conv1d, conv2d, normalize_tuple, output_length
from .base import POSITIVE_INT, Layer, WeightSpec, single_shape
from .common_args import ACTIVATION, REGULARIZER, initializer
from .data_format import data_format_aware


def int_or_tuple(n: int, default=None) -> dict:
    """Schema of a size given as one int or a list of ``n`` ints (Keras' int-or-tuple)."""
    schema = {"oneOf": [POSITIVE_INT, {"type": "array", "items": POSITIVE_INT,
                                       "minItems": n, "maxItems": n}]}
    if default is not None:
        schema["default"] = default
    return schema


def optional_int_or_tuple(n: int) -> dict:
    """Like :func:`int_or_tuple` but ``null`` allowed (pooling strides: null = pool_size)."""
    schema = int_or_tuple(n)
    schema["oneOf"] = schema["oneOf"] + [{"type": "null"}]
    schema["default"] = None
    return schema


def layer_tuple(layer: Layer, key: str, n: int) -> tuple:
    """An int-or-tuple argument of ``layer`` as ``n`` ints, or a ShapeError naming it."""
    try:
        values = normalize_tuple(layer.config[key], n, key)
    except (TypeError, ValueError):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': {key} must be a positive "
                         f"integer or a list of {n}, got {layer.config[key]!r}") from None
    if any(v < 1 for v in values):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': {key} must be positive, "
                         f"got {layer.config[key]!r}")
    return values


def spatial_output(layer: Layer, shape: tuple, rank: int, window: tuple, strides: tuple,
                   padding: str, dilation: tuple) -> tuple:
    """Output sizes of a window op on ``shape`` (batch, *spatial, channels); ``None``
    stays ``None``; a size below one is a ShapeError."""
    expected = "(batch, steps, channels)" if rank == 1 else "(batch, height, width, channels)"
    if len(shape) != rank + 2:
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' expects input of rank {rank + 2} "
                         f"{expected}, got shape {shape}")
    if padding not in ("valid", "same", "causal"):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': unknown padding {padding!r}")
    sizes = []
    for axis in range(rank):
        n = shape[1 + axis]
        out = output_length(n, window[axis], strides[axis], padding, dilation[axis])
        if out is not None and out < 1:
            extent = (window[axis] - 1) * dilation[axis] + 1
            raise ShapeError(
                f"{layer.TYPE} layer '{layer.name}': input shape {shape} is too small: "
                f"spatial axis {axis + 1} has size {n} but the window spans {extent} with "
                f"'{padding}' padding, so the output would be empty (expected a size of "
                f"at least {extent})")
        sizes.append(out)
    return tuple(sizes)


class ConvBase(Layer):
    """Conv1D and Conv2D: everything but the rank."""
    RANK = 2
    REQUIRED = ("filters", "kernel_size")

    @classmethod
    def conv_args(cls, rank: int, paddings: list) -> dict:
        return {
            "filters": POSITIVE_INT,
            "kernel_size": int_or_tuple(rank),
            "strides": int_or_tuple(rank, default=1),
            "padding": {"enum": paddings, "default": "valid"},
            "dilation_rate": int_or_tuple(rank, default=1),
            "groups": {"type": "integer", "minimum": 1, "maximum": 1 << 16, "default": 1,
                       "description": "channel groups: filters and input channels split "
                                      "into this many blocks, block g seeing only block g"},
            "activation": ACTIVATION,
            "use_bias": {"type": "boolean", "default": True},
            "kernel_initializer": initializer("glorot_uniform"),
            "bias_initializer": initializer("zeros"),
            "kernel_regularizer": REGULARIZER,
            "bias_regularizer": REGULARIZER,
            "activity_regularizer": REGULARIZER,
        }

    def geometry(self) -> tuple:
        kernel = layer_tuple(self, "kernel_size", self.RANK)
        strides = layer_tuple(self, "strides", self.RANK)
        dilation = layer_tuple(self, "dilation_rate", self.RANK)
        if any(s > 1 for s in strides) and any(d > 1 for d in dilation):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': strides {strides} > 1 "
                             f"together with dilation_rate {dilation} > 1 is not supported "
                             "(as in Keras): use one or the other")
        return kernel, strides, dilation

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        kernel, strides, dilation = self.geometry()
        sizes = spatial_output(self, shape, self.RANK, kernel, strides, self.padding, dilation)
        if shape[-1] is None:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs a known channel axis "
                             f"(the last one) to size its kernel, got input shape {shape}")
        self.group_channels(shape[-1])
        return [(shape[0],) + sizes + (self.filters,)]

    def group_channels(self, channels: int) -> int:
        """Input channels per group; both channels and filters must split evenly."""
        groups = self.groups
        if channels % groups or self.filters % groups:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': groups {groups} must divide "
                             f"both the input channels ({channels}) and filters "
                             f"({self.filters})")
        return channels // groups

    def weight_specs(self, input_shapes):
        kernel, _, _ = self.geometry()
        per_group = self.group_channels(input_shapes[0][-1])
        specs = [WeightSpec("kernel", kernel + (per_group, self.filters),
                            self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def forward(self, inputs, ctx):
        _, strides, dilation = self.geometry()
        op = conv2d if self.RANK == 2 else conv1d
        fused = self.activation == "relu"
        y = op(inputs[0], self.weights["kernel"],
               self.weights["bias"] if self.use_bias else None,
               strides=strides, padding=self.padding, dilation=dilation,
               activation="relu" if fused else None, groups=self.groups)
        return [y if fused else ops.ACTIVATIONS[self.activation](y)]


@data_format_aware
class Conv2D(ConvBase):
    TYPE = "Conv2D"
    DOC = ("2-D convolution over (height, width, channels) inputs; kernel shape "
           "(kh, kw, in_channels, filters); TensorFlow 'same' padding.")
    RANK = 2
    ARGS = ConvBase.conv_args(2, ["valid", "same"])
