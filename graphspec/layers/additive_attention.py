"""AdditiveAttention (Keras 3, "Bahdanau"): Attention with additive scores

    scores = sum(scale * tanh(query_i + key_j), features)

``scale`` is a trainable vector of the query's feature size (glorot_uniform, as Keras)
when ``use_scale`` (the default); everything else is :mod:`attention`'s.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .attention import COMMON_ARGS, Attention
from .base import WeightSpec


class AdditiveAttention(Attention):
    TYPE = "AdditiveAttention"
    DOC = ("Additive (Bahdanau) attention (Keras 3) over [query, value] or [query, value, "
           "key]; scores sum(scale * tanh(q + k)).")
    ARGS = {"use_scale": {"type": "boolean", "default": True}, **COMMON_ARGS}

    def compute_output_shapes(self, input_shapes):
        shapes = super().compute_output_shapes(input_shapes)
        if input_shapes[0][-1] is None:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs a known query feature "
                             f"size, got {tuple(input_shapes[0])[1:]}")
        return shapes

    def weight_specs(self, input_shapes):
        if not self.use_scale:
            return []
        return [WeightSpec("scale", (input_shapes[0][-1],), "glorot_uniform")]

    def scores(self, query, key):
        pairs = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.use_scale:
            pairs = ops.mul(self.weights["scale"], pairs)
        return ops.sum_(pairs, -1)
