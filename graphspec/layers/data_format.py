"""Keras' ``data_format`` on the convolution, pooling, padding, cropping, upsampling and
Flatten layers.

graphspec's window ops are written channels-last. A layer given ``data_format:
channels_first`` (an imported channels-first model) therefore sees its input transposed
to channels-last, runs unchanged, and has outputs of rank > 2 transposed back: the
numbers are the channels-first layer's, at the cost of two transposes. Shapes and weight
shapes go through the same two conversions, so the kernels keep Keras' layout (Keras'
kernels do not depend on data_format either).
"""
from __future__ import annotations

from .. import ops

# No schema default: an absent data_format is channels_last, and configs written before
# the argument existed (and their diffs, exports, saved metadata) stay as they were.
DATA_FORMAT = {"enum": ["channels_last", "channels_first"],
               "description": "channels_last (when absent): (batch, ..., channels); "
                              "channels_first: (batch, channels, ...)"}


def channels_first(layer) -> bool:
    return layer.config.get("data_format") == "channels_first"


def last_shape(layer, shape) -> tuple:
    """``shape`` as the channels-last layer sees it."""
    shape = tuple(shape)
    if not channels_first(layer) or len(shape) < 3:
        return shape
    return (shape[0],) + shape[2:] + (shape[1],)


def last_shapes(layer, shapes) -> list:
    return [last_shape(layer, s) for s in shapes]


def layer_shape(layer, shape) -> tuple:
    """A channels-last output shape in the layer's own data format."""
    shape = tuple(shape)
    if not channels_first(layer) or len(shape) < 3:
        return shape
    return (shape[0], shape[-1]) + shape[1:-1]


def layer_shapes(layer, shapes) -> list:
    return [layer_shape(layer, s) for s in shapes]


def to_last(layer, x):
    """The input, transposed to channels-last when the layer is channels-first."""
    rank = x.data.ndim
    if not channels_first(layer) or rank < 3:
        return x
    return ops.permute(x, (0,) + tuple(range(2, rank)) + (1,))


def from_last(layer, y):
    """A channels-last output, transposed back to the layer's data format."""
    rank = y.data.ndim
    if not channels_first(layer) or rank < 3:
        return y
    return ops.permute(y, (0, rank - 1) + tuple(range(1, rank - 1)))


def data_format_aware(cls):
    """Class decorator: adds the ``data_format`` argument to ``cls`` and wraps its shape
    inference, weight creation and forward in the conversions above. A method inherited
    already wrapped is left alone, so a subclass is converted exactly once."""
    for name, wrap in (("compute_output_shapes", _wrap_shapes),
                       ("weight_specs", _wrap_weights), ("forward", _wrap_forward)):
        method = getattr(cls, name)
        if not getattr(method, "data_format_aware", False):
            wrapped = wrap(method)
            wrapped.data_format_aware = True
            wrapped.__doc__ = method.__doc__
            setattr(cls, name, wrapped)
    cls.ARGS = dict(cls.ARGS, data_format=DATA_FORMAT)
    return cls


def _wrap_shapes(method):
    def compute_output_shapes(self, input_shapes):
        return layer_shapes(self, method(self, last_shapes(self, input_shapes)))
    return compute_output_shapes


def _wrap_weights(method):
    def weight_specs(self, input_shapes):
        return method(self, last_shapes(self, input_shapes))
    return weight_specs


def _wrap_forward(method):
    def forward(self, inputs, ctx):
        outputs = method(self, [to_last(self, x) for x in inputs], ctx)
        return [from_last(self, y) for y in outputs]
    return forward
