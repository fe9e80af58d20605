"""Concatenate: joins its inputs along ``axis`` (default the last, channels-last)."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from .base import Layer
from .merging import joined_sources


class Concatenate(Layer):
    TYPE = "Concatenate"
    DOC = "Concatenates inputs along one axis; all other axes must match."
    ARGS = {"axis": {"type": "integer", "default": -1, "minimum": -64, "maximum": 64}}
    INPUTS = (1, None)
    SUPPORTS_MASKING = True

    def _axis(self, rank):
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or axis == 0:
            raise ShapeError(f"Concatenate '{self.name}': axis {self.axis} is not a feature "
                             f"axis of rank-{rank} inputs")
        return axis

    def compute_output_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        rank = len(input_shapes[0])
        if any(len(s) != rank for s in input_shapes):
            raise ShapeError(f"Concatenate '{self.name}' needs inputs of equal rank, got "
                             f"{', '.join(map(str, input_shapes))}")
        axis = self._axis(rank)
        out = list(input_shapes[0])
        for i in range(1, rank):
            dims = [s[i] for s in input_shapes]
            if i == axis:
                out[i] = None if None in dims else sum(dims)
            elif len({d for d in dims if d is not None}) > 1:
                raise ShapeError(
                    f"Concatenate '{self.name}' on axis {self.axis} needs the other axes to "
                    f"match, got {', '.join(map(str, input_shapes))}")
        return [tuple(out)]

    def forward(self, inputs, ctx):
        return [ops.concatenate(inputs, axis=self._axis(len(inputs[0].shape)))]

    # -- masks (Keras' Concatenate.compute_mask) ------------------------------------
    def mask_sources(self, sources, n_outputs):
        return [joined_sources(sources) or None]

    def compute_mask(self, inputs, masks):
        """An unmasked input counts as all steps kept; each mask is spread over its
        input's last axis, the masks are joined along ``axis``, and a position is kept
        if any of its last-axis entries is."""
        if all(m is None for m in masks):
            return [None]
        shapes = [np.shape(getattr(x, "data", x)) for x in inputs]
        full = [np.ones(shape, dtype=bool) if m is None
                else np.broadcast_to(m[..., None] if m.ndim < len(shape) else m, shape)
                for shape, m in zip(shapes, masks)]
        joined = np.concatenate(full, axis=self._axis(len(shapes[0])))
        return [joined.any(axis=-1)]
