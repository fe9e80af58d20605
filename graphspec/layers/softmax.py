"""Softmax: normalised exponentials over ``axis`` (an int, or a list of axes normalised
together, as Keras' Softmax layer allows).

With a mask (Keras' ``Softmax.call(inputs, mask)``; the mask passes on to the output):
the mask is broadcast against the input *aligned on the right* (numpy's rule), each of
its axes 1 or equal to the input's, else a ShapeError, as Keras raises ValueError.
Masked inputs become -1e9 before the softmax and their outputs 0 after, so a fully
masked softmax is all zeros. Note that a sequence mask ``(B, T)`` on ``(B, T, C)``
values is compared with the last axes ``(T, C)`` by that rule: Keras refuses it unless
the sizes happen to fit, and graphspec does the same.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops.activations import softmax
from ..ops.attention import masked_softmax
from .base import Layer, single_shape

AXIS = {"type": "integer", "minimum": -64, "maximum": 64}


class Softmax(Layer):
    TYPE = "Softmax"
    DOC = "Softmax over axis (default -1); a list of axes normalises over all of them."
    ARGS = {"axis": {"oneOf": [AXIS, {"type": "array", "items": AXIS, "minItems": 1}],
                     "default": -1}}
    SUPPORTS_MASKING = True
    USES_MASK = True

    def axes(self, rank: int) -> tuple:
        written = self.axis if isinstance(self.axis, list) else [self.axis]
        for axis in written:
            if not -rank <= axis < rank or axis % rank == 0:
                raise ShapeError(f"Softmax layer '{self.name}': axis {axis} is not a feature "
                                 f"axis of a rank-{rank} input (batch axis 0 excluded)")
        return tuple(sorted({a % rank for a in written}))

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        self.axes(len(shape))
        return [shape]

    def forward(self, inputs, ctx):
        return [softmax(inputs[0], axis=self.axes(inputs[0].data.ndim))]

    def forward_masked(self, inputs, masks, ctx):
        if masks[0] is None:
            return self.forward(inputs, ctx)
        x = inputs[0]
        keep = np.asarray(masks[0])
        self._check_mask(keep.shape, x.shape)
        if keep.dtype != bool:
            keep = keep > 0.5               # Keras: a float mask keeps entries > 0.5
        return [masked_softmax(x, keep, "fill", axis=self.axes(x.data.ndim))]

    def _check_mask(self, mask_shape, shape):
        """Keras' check: the mask has at most the input's rank and, right-aligned, each
        of its axes is 1 or the input's size."""
        fits = len(mask_shape) <= len(shape) and all(
            m in (1, n) for m, n in zip(mask_shape[::-1], shape[::-1]))
        if not fits:
            raise ShapeError(f"Softmax layer '{self.name}': its input mask of shape "
                             f"{tuple(mask_shape)} does not broadcast to the input "
                             f"{tuple(shape)} aligned on the right (Keras refuses it the "
                             "same way; each mask axis must be 1 or match)")
