"""GlobalAveragePooling1D: mean over the steps, (B, T, C) -> (B, C), or (B, 1, C) with
keepdims.

With a mask (Keras' ``call(inputs, mask)``): the mean of the unmasked steps,
``sum(where(mask, x, 0)) / sum(mask)``; the mask ``(B, T)`` is expanded on the channel
axis (the last, or axis 1 for channels_first). A row with every step masked is 0 / 0 =
NaN, as in Keras. The output carries no mask (Keras' compute_mask returns None).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autodiff.engine import result
from ..errors import ShapeError
from .base import Layer
from .data_format import channels_first, data_format_aware
from .global_average_pooling2d import global_pool_shape


def masked_mean(x, keep, axis: int, keepdims: bool):
    """Mean over ``axis`` of the entries where the boolean ``keep`` (broadcastable to
    ``x``) is True; masked entries get no gradient, the others ``g / count``."""
    xd = x.data
    dtype = xd.dtype.type
    count = np.sum(np.broadcast_to(keep, xd.shape), axis=axis, keepdims=True).astype(xd.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):     # all masked: NaN, as Keras
        out = np.where(keep, xd, dtype(0)).sum(axis=axis, keepdims=True) / count
        share = np.where(keep, dtype(1) / count, dtype(0))

    def backward(g):
        g = g if keepdims else np.expand_dims(g, axis)
        return (g * share,)
    return result(out if keepdims else np.squeeze(out, axis), (x,), backward)


@data_format_aware
class GlobalAveragePooling1D(Layer):
    TYPE = "GlobalAveragePooling1D"
    DOC = "Mean over steps: (T, C) -> (C,), or (1, C) with keepdims; masked steps skipped."
    ARGS = {"keepdims": {"type": "boolean", "default": False}}
    SUPPORTS_MASKING = True     # takes a mask, and consumes it
    USES_MASK = True

    def compute_output_shapes(self, input_shapes):
        return global_pool_shape(self, input_shapes, rank=1)

    def forward(self, inputs, ctx):
        return [ops.mean(inputs[0], axis=1, keepdims=self.keepdims)]

    def mask_sources(self, sources, n_outputs):
        return [None]

    def compute_mask(self, inputs, masks):
        return [None]

    def forward_masked(self, inputs, masks, ctx):
        if masks[0] is None:
            return self.forward(inputs, ctx)
        x = inputs[0]
        first = channels_first(self)
        keep = np.expand_dims(np.asarray(masks[0], bool), 1 if first else 2)
        try:
            np.broadcast_shapes(keep.shape, x.shape)
        except ValueError:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': its input mask of shape "
                             f"{np.shape(masks[0])} does not fit the steps of input "
                             f"{x.shape} (Keras expands it on the channel axis)") from None
        return [masked_mean(x, keep, 2 if first else 1, self.keepdims)]
