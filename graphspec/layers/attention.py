"""Attention (Keras 3): dot-product ("Luong") attention over inputs [query, value, key?].

    scores  = query . key^T                      (score_mode: dot; * scale if use_scale)
            = concat_score_weight * sum(tanh(scale? * (query_i + key_j)))  (concat)
    weights = softmax(scores) over the key steps, masked keys at scores - 1e9
    output  = weights . value                     -> (*query_shape[:-1], value features)

``use_scale`` adds a trainable scalar ``scale`` (ones), ``score_mode: concat`` a scalar
``concat_score_weight`` (ones), as Keras. ``use_causal_mask`` and
``return_attention_scores`` are Keras call arguments, here the layer's. Dropout drops
attention weights while training.

Masks, as Keras' ``call(inputs, mask=[query_mask, value_mask])`` (the key's mask is
ignored, as Keras ignores it): the value's mask and the causal mask mask keys (Keras
subtracts 1e9 from their scores, so a query whose every key is masked keeps a softmax
over them in float64, near uniform in float32); the query's mask zeroes the output rows
of masked queries (not their weights) and is the output's mask.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..ops.attention import causal_keep, dropout_keep, masked_softmax
from .base import Layer, WeightSpec
from .masking import masked_steps

COMMON_ARGS = {
    "dropout": {"type": "number", "default": 0.0, "minimum": 0, "exclusiveMaximum": 1,
                "description": "dropout on the attention weights (training)"},
    "use_causal_mask": {"type": "boolean", "default": False,
                        "description": "query step i attends to key steps <= i only"},
    "return_attention_scores": {"type": "boolean", "default": False,
                                "description": "second output: the (Tq, Tv) attention "
                                               "weights after the softmax"},
}


class Attention(Layer):
    TYPE = "Attention"
    DOC = ("Dot-product attention (Keras 3) over [query, value] or [query, value, key]; "
           "score_mode dot or concat, optional trainable scale.")
    ARGS = {
        "use_scale": {"type": "boolean", "default": False},
        "score_mode": {"enum": ["dot", "concat"], "default": "dot"},
        **COMMON_ARGS,
    }
    INPUTS = (2, 3)
    SUPPORTS_MASKING = True     # Keras' compute_mask: the query's mask
    USES_MASK = True

    def compute_output_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        query, value = tuple(input_shapes[0]), tuple(input_shapes[1])
        key = tuple(input_shapes[2]) if len(input_shapes) == 3 else value
        for role, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) < 3:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': the {role} must have "
                                 f"shape (steps, features), got {shape[1:]}")
        self._check_fits(query, value, key)
        outputs = [query[:-1] + value[-1:]]
        if self.return_attention_scores:
            outputs.append(query[:-1] + key[-2:-1])
        return outputs

    def _check_fits(self, query, value, key):
        def differ(a, b):
            return None not in (a, b) and a != b
        if differ(key[-2], value[-2]):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': key and value must have the "
                             f"same number of steps, got {key[-2]} and {value[-2]}")
        if differ(query[-1], key[-1]):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': query and key must have "
                             f"the same number of features, got {query[-1]} and {key[-1]}")

    def weight_specs(self, input_shapes):
        specs = []
        if self.use_scale:
            specs.append(WeightSpec("scale", (), "ones"))
        if self.score_mode == "concat":
            specs.append(WeightSpec("concat_score_weight", (), "ones"))
        return specs

    def scores(self, query, key):
        """``(..., Tq, Tv)`` attention logits."""
        scale = self.weights.get("scale")
        if self.score_mode == "dot":
            rank = key.data.ndim
            keys_t = ops.permute(key, tuple(range(rank - 2)) + (rank - 1, rank - 2))
            out = ops.matmul(query, keys_t)
            return ops.mul(out, scale) if scale is not None else out
        pairs = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if scale is not None:
            pairs = ops.mul(scale, pairs)
        return ops.mul(self.weights["concat_score_weight"], ops.sum_(ops.tanh(pairs), -1))

    def forward(self, inputs, ctx):
        return self.forward_masked(inputs, [None] * len(inputs), ctx)

    def forward_masked(self, inputs, masks, ctx):
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) == 3 else value
        q_mask, v_mask = masks[0], masks[1]
        logits = self.scores(query, key)
        keep = self._score_keep(logits.shape, v_mask)
        weights = masked_softmax(logits, keep, "subtract")
        attended = weights
        if ctx.training and self.dropout > 0:
            attended = ops.mul(weights, dropout_keep(weights.shape, self.dropout, ctx.rng,
                                                     np.dtype(weights.data.dtype)))
        out = ops.matmul(attended, value)
        if q_mask is not None:
            out = masked_steps(out, np.asarray(q_mask, bool))
        return [out, weights] if self.return_attention_scores else [out]

    def _score_keep(self, scores_shape, v_mask):
        """Keras' ``_calculate_score_mask``: the value mask as (B, 1, Tv), AND the
        causal mask (1, Tq, Tv) when asked; None when neither."""
        if v_mask is not None:
            v_mask = np.asarray(v_mask, bool)
            # Keras expands a (B, Tv) mask, or any mask when causal, on axis -2
            if v_mask.ndim == 2 or self.use_causal_mask:
                v_mask = np.expand_dims(v_mask, -2)
        if not self.use_causal_mask:
            return v_mask
        causal = causal_keep(*scores_shape[-2:])[None]
        return causal if v_mask is None else np.logical_and(v_mask, causal)
