"""Normalization (Keras 3 preprocessing): ``(x - mean) / max(sqrt(variance), 1e-7)``,
or with ``invert`` ``mean + x * max(sqrt(variance), 1e-7)``.

``mean`` and ``variance`` are non-trainable weights over the kept ``axis`` (sorted, as
Keras; ``axis: null`` keeps none: one scalar pair), set from data by
:func:`graphspec.layers.normalization_adapt.adapt` as Keras' ``adapt`` sets them, or
given in the spec (``mean``/``variance``: numbers or lists broadcast as Keras does).
Until then they are 0 and 1 (Keras' initial values), so the layer is the identity.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from .base import Layer, WeightSpec, distinct_feature_axes, single_shape

# Keras' backend.epsilon(): the floor of the standard deviation
EPSILON = 1e-7
_AXIS = {"type": "integer", "minimum": -64, "maximum": 64}
_VALUE = {"type": ["number", "array", "null"], "default": None,
          "items": {"type": ["number", "array"]}, "maxItems": 1 << 16}


class Normalization(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "Normalization"
    DOC = ("Feature-wise (x - mean) / sqrt(variance) with non-trainable mean and variance "
           "(Keras 3), set by `graphspec adapt` or given.")
    ARGS = {
        "axis": {"type": ["integer", "array", "null"], "default": -1, "minimum": -64,
                 "maximum": 64, "items": _AXIS, "maxItems": 64,
                 "description": "axes with their own mean and variance; null: one for all"},
        "mean": dict(_VALUE, description="initial mean (with variance): number or list"),
        "variance": dict(_VALUE, description="initial variance (with mean): number or list"),
        "invert": {"type": "boolean", "default": False,
                   "description": "undo the normalisation: mean + x * sqrt(variance)"},
    }

    def kept_axes(self, rank) -> tuple:
        """The sorted non-negative axes with their own statistics."""
        return distinct_feature_axes(self, [] if self.axis is None else self.axis, rank)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        for a in self.kept_axes(len(shape)):
            if shape[a] is None:
                raise ShapeError(f"{self.TYPE} layer '{self.name}' needs a known size on "
                                 f"axis {a}, got input shape {shape}")
        if (self.mean is None) != (self.variance is None):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': give both mean and "
                             "variance, or neither")
        if self.mean is not None and np.shape(self.mean) != np.shape(self.variance):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': mean and variance must have "
                             f"the same shape (Keras' rule), got {np.shape(self.mean)} and "
                             f"{np.shape(self.variance)}")
        for arg in ("mean", "variance"):
            self._given(arg, self._stat_shape(shape))
        return [shape]

    def _stat_shape(self, shape) -> tuple:
        return tuple(shape[a] for a in self.kept_axes(len(shape)))

    def _given(self, arg, stat_shape):
        """The ``mean``/``variance`` argument as an array that broadcasts to
        ``stat_shape`` (Keras: its axes are the last kept axes), or None when not given.
        Not broadcast here: the weight's size is checked before anything that large is
        allocated."""
        value = self.config.get(arg)
        if value is None:
            return None
        try:
            array = np.asarray(value, dtype=np.float64)
            if array.ndim > len(stat_shape) or \
                    np.broadcast_shapes(array.shape, stat_shape) != tuple(stat_shape):
                raise ValueError
            return array
        except ValueError:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': {arg} must be a number or a "
                             f"list that broadcasts to the statistics' shape {stat_shape}"
                             ) from None

    def weight_specs(self, input_shapes):
        stat = self._stat_shape(tuple(input_shapes[0]))
        mean, variance = self._given("mean", stat), self._given("variance", stat)
        return [
            WeightSpec("mean", stat, "zeros" if mean is None else _filled(mean),
                       trainable=False),
            WeightSpec("variance", stat, "ones" if variance is None else _filled(variance),
                       trainable=False)]

    def forward(self, inputs, ctx):
        x = inputs[0]
        if x.dtype.kind != "f":
            x = ops.cast(x, self.weights["mean"].dtype)
        rank = x.data.ndim
        kept = self.kept_axes(rank)
        bshape = tuple(x.shape[i] if i in kept else 1 for i in range(1, rank))
        mean = ops.reshape(self.weights["mean"], bshape)
        std = ops.maximum(ops.sqrt(ops.reshape(self.weights["variance"], bshape)),
                          np.asarray(EPSILON, dtype=x.dtype))
        if self.invert:
            return [ops.add(mean, ops.mul(x, std))]
        return [ops.div(ops.sub(x, mean), std)]


def _filled(array):
    """An initializer giving ``array`` broadcast to the weight's shape."""
    return lambda shape, rng: np.broadcast_to(array, shape).copy()
