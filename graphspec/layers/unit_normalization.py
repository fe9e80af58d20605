"""UnitNormalization (Keras 3): each sample scaled to unit L2 norm over ``axis``,

    y = x * min(rsqrt(sum(x ** 2, axis)), 1 / 1e-12)

(Keras' ``ops.normalize``: the cap keeps an all-zero slice at zero). Forward and
backward side by side."""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import result
from .base import Layer, distinct_feature_axes, single_shape

EPSILON = 1e-12
_AXIS = {"type": "integer", "minimum": -64, "maximum": 64}


def unit_normalize(x, axes):
    xd = x.data
    with np.errstate(divide="ignore"):
        rsqrt = 1.0 / np.sqrt((xd * xd).sum(axis=axes, keepdims=True))
    capped = rsqrt >= 1.0 / EPSILON
    scale = np.where(capped, xd.dtype.type(1.0 / EPSILON), rsqrt)
    out = xd * scale

    def backward(g):
        # where the cap holds the scale is a constant; elsewhere d rsqrt/dx = -rsqrt^3 x
        inner = np.where(capped, 0, rsqrt ** 3) * (g * xd).sum(axis=axes, keepdims=True)
        return (g * scale - xd * inner,)
    return result(out, (x,), backward)


class UnitNormalization(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "UnitNormalization"
    DOC = "Scales each sample to unit L2 norm over `axis` (Keras 3)."
    ARGS = {"axis": {"type": ["integer", "array"], "default": -1, "minimum": -64,
                     "maximum": 64, "items": _AXIS, "minItems": 1, "maxItems": 64,
                     "description": "axis or axes the norm is taken over (batch excluded)"}}

    def _axes(self, rank) -> tuple:
        return distinct_feature_axes(self, self.axis, rank)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        self._axes(len(shape))
        return [shape]

    def forward(self, inputs, ctx):
        return [unit_normalize(inputs[0], self._axes(inputs[0].data.ndim))]
