"""Dot: per-sample dot product of two tensors along ``axes`` (Keras ``Dot`` layer)."""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer


class Dot(Layer):
    SUPPORTS_MASKING = True   # Keras: takes masked inputs; its output carries no mask

    def mask_sources(self, sources, n_outputs):
        return [None]

    def compute_mask(self, inputs, masks):
        return [None]

    TYPE = "Dot"
    DOC = "batch_dot of two inputs along axes; normalize=true gives cosine proximity."
    ARGS = {"axes": {"oneOf": [{"type": "integer"},
                               {"type": "array", "items": {"type": "integer"},
                                "minItems": 2, "maxItems": 2}]},
            "normalize": {"type": "boolean", "default": False}}
    REQUIRED = ("axes",)
    INPUTS = 2

    def _axes(self, shapes):
        axes = self.axes if isinstance(self.axes, list) else [self.axes, self.axes]
        result = []
        for axis, shape in zip(axes, shapes):
            if not -len(shape) <= axis < len(shape) or axis % len(shape) == 0:
                raise ShapeError(f"Dot '{self.name}': axis {axis} is not a feature axis of "
                                 f"shape {shape}")
            result.append(axis % len(shape))
        return result

    def compute_output_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        a, b = input_shapes
        ax_a, ax_b = self._axes(input_shapes)
        if a[ax_a] is not None and b[ax_b] is not None and a[ax_a] != b[ax_b]:
            raise ShapeError(f"Dot '{self.name}': axis {ax_a} of {a} and axis {ax_b} of {b} "
                             "differ in size")
        rest = tuple(d for i, d in enumerate(a) if i not in (0, ax_a)) + \
            tuple(d for i, d in enumerate(b) if i not in (0, ax_b))
        return [(None,) + (rest or (1,))]

    def forward(self, inputs, ctx):
        a, b = inputs
        ax_a, ax_b = self._axes([a.shape, b.shape])
        if self.normalize:
            a, b = _l2_normalize(a, ax_a), _l2_normalize(b, ax_b)
        return [ops.batch_dot(a, b, axes=(ax_a, ax_b))]


def _l2_normalize(x, axis):
    norm = ops.sqrt(ops.maximum(ops.sum_(ops.square(x), axis=axis, keepdims=True), 1e-12))
    return ops.div(x, norm)
