"""Masking (Keras semantics): steps whose features all equal ``mask_value`` are masked.

Input ``(batch, steps, ..., features)``; the mask is ``any(x != mask_value)`` over the
last axis, shape ``(batch, steps, ...)``. The output is the input with masked steps set
to 0 (as Keras' ``where``, not a product: ``inf * 0`` would be NaN), and carries the
mask to the layers after it (RNNs skip masked steps, GlobalAveragePooling1D averages
the others, attention ignores them as keys).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from .base import Layer, single_shape


def masked_steps(x, keep):
    """``where(keep[..., None], x, 0)``; the gradient passes where ``keep`` is True."""
    return ops.where(keep[..., None], x, x.data.dtype.type(0))


class Masking(Layer):
    TYPE = "Masking"
    DOC = ("Masks the steps whose features all equal mask_value (Keras' Masking): the "
           "output is 0 there and carries a mask that RNNs, pooling and attention use.")
    ARGS = {"mask_value": {"type": "number", "default": 0.0,
                           "description": "a step whose every feature equals this is masked"}}
    SUPPORTS_MASKING = True

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if len(shape) < 3:
            raise ShapeError(f"Masking layer '{self.name}' needs (steps, ..., features) "
                             f"inputs, got shape {shape[1:]} (batch axis not written)")
        return [shape]

    def makes_mask(self) -> bool:
        return True

    def mask_sources(self, sources, n_outputs):
        return [self.name]

    def _keep(self, x):
        return np.any(x.data != x.data.dtype.type(self.mask_value), axis=-1)

    def compute_mask(self, inputs, masks):
        return [self._keep(inputs[0])]

    def forward(self, inputs, ctx):
        return [masked_steps(inputs[0], self._keep(inputs[0]))]
