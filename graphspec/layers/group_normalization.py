"""GroupNormalization (Keras 3): the channels of ``axis`` are split into ``groups``;
each sample is normalised per group over the group's channels and every other feature
axis (mean and biased variance), then scaled by ``gamma`` and shifted by ``beta``, one
per channel. ``groups: -1`` is one group per channel (instance normalisation).

The normalisation reuses LayerNormalization's op on a grouped view, so its backward is
the one written there."""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer, WeightSpec, single_shape
from .common_args import REGULARIZER, initializer
from .layer_normalization import layer_norm


class GroupNormalization(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "GroupNormalization"
    DOC = ("Normalisation per sample and channel group over `axis` (Keras 3); gamma and "
           "beta per channel.")
    ARGS = {
        "groups": {"type": "integer", "default": 32, "minimum": -1, "maximum": 1 << 24,
                   "description": "number of groups; -1: one per channel"},
        "axis": {"type": "integer", "default": -1, "minimum": -64, "maximum": 64,
                 "description": "the channel axis"},
        "epsilon": {"type": "number", "default": 1e-3, "exclusiveMinimum": 0},
        "center": {"type": "boolean", "default": True},
        "scale": {"type": "boolean", "default": True},
        "beta_initializer": initializer("zeros"),
        "gamma_initializer": initializer("ones"),
        "beta_regularizer": REGULARIZER,
        "gamma_regularizer": REGULARIZER,
    }

    def _axis(self, rank) -> int:
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': axis {self.axis} is not a "
                             f"feature axis of rank-{rank} inputs (batch included)")
        return self.axis % rank

    def _groups(self, channels) -> int:
        groups = channels if self.groups == -1 else self.groups
        if groups == 0 or groups > channels or channels % groups:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': {channels} channels cannot "
                             f"be split into {groups} groups of equal size")
        return groups

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        axis = self._axis(len(shape))
        if shape[axis] is None:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs a known size on axis "
                             f"{self.axis}, got input shape {shape}")
        self._groups(shape[axis])
        return [shape]

    def weight_specs(self, input_shapes):
        shape = tuple(input_shapes[0])
        n = (shape[self._axis(len(shape))],)
        specs = []
        if self.scale:
            specs.append(WeightSpec("gamma", n, self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec("beta", n, self.beta_initializer))
        return specs

    def forward(self, inputs, ctx):
        x = inputs[0]
        shape = x.shape
        axis = self._axis(len(shape))
        groups = self._groups(shape[axis])
        grouped = shape[:axis] + (groups, shape[axis] // groups) + shape[axis + 1:]
        reduce = tuple(i for i in range(1, len(grouped)) if i != axis)
        y = layer_norm(ops.reshape(x, grouped), None, None, reduce, self.epsilon)
        y = ops.reshape(y, shape)
        bshape = tuple(shape[axis] if i == axis else 1 for i in range(1, len(shape)))
        if self.scale:
            y = ops.mul(y, ops.reshape(self.weights["gamma"], bshape))
        if self.center:
            y = ops.add(y, ops.reshape(self.weights["beta"], bshape))
        return [y]
