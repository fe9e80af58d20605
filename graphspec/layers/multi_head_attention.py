"""MultiHeadAttention (Keras 3), with Keras' weight layout so imports map one to one.

Inputs, in this order: ``query (B, T, dq)``, ``value (B, S, dv)``, optionally ``key (B,
S, dk)`` (else the value is the key), and, when ``attention_mask: true``, last, a mask
``(B, T, S)`` (either axis may be 1 to broadcast) where nonzero means "may attend"
(Keras' ``attention_mask`` call argument; Keras casts it to bool the same way).

    q = query . query_kernel (dq, N, K) + query_bias (N, K)      -> (B, T, N, K)
    k = key   . key_kernel   (dk, N, K) + key_bias   (N, K)      -> (B, S, N, K)
    v = value . value_kernel (dv, N, V) + value_bias (N, V)      -> (B, S, N, V)
    scores = softmax(q . k / sqrt(K), masked)                    -> (B, N, T, S)
    out = (scores . v) . attention_output_kernel (N, V, *E) + attention_output_bias (*E)

``E`` is ``output_shape`` or the query's last size. Masked scores are replaced by -1e9
before the softmax (Keras' Softmax), dropout (training only) drops probabilities.
``use_causal_mask`` and ``return_attention_scores`` are Keras call arguments; here they
are the layer's (every call of one layer uses the same). Rank-3 inputs only: Keras'
``attention_axes`` over several axes is not offered.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..ops.attention import (attention_combine, attention_scores, causal_keep, dropout_keep,
                             masked_softmax, project)
from .base import MAX_DIM, POSITIVE_INT, Layer, WeightSpec
from .common_args import REGULARIZER, initializer

_PROJECTIONS = ("query", "key", "value")


class MultiHeadAttention(Layer):
    TYPE = "MultiHeadAttention"
    DOC = ("Multi-head scaled dot-product attention (Keras 3): inputs query, value[, key]"
           "[, attention_mask]; Keras' weight layout (query_kernel (d, heads, key_dim), ...).")
    ARGS = {
        "num_heads": POSITIVE_INT,
        "key_dim": POSITIVE_INT,
        "value_dim": {"type": ["integer", "null"], "default": None, "minimum": 1,
                      "maximum": MAX_DIM, "description": "per-head value size; null: key_dim"},
        "dropout": {"type": "number", "default": 0.0, "minimum": 0, "exclusiveMaximum": 1,
                    "description": "dropout on the attention probabilities (training)"},
        "use_bias": {"type": "boolean", "default": True},
        "output_shape": {"type": ["integer", "array", "null"], "default": None,
                         "minimum": 1, "maximum": MAX_DIM, "items": POSITIVE_INT,
                         "minItems": 1, "maxItems": 8,
                         "description": "output feature shape; null: the query's last size"},
        "attention_mask": {"type": "boolean", "default": False,
                           "description": "the last input is a (T, S) mask, nonzero = attend"},
        "use_causal_mask": {"type": "boolean", "default": False,
                            "description": "query step i attends to key steps <= i only"},
        "return_attention_scores": {"type": "boolean", "default": False,
                                    "description": "second output: the (heads, T, S) "
                                                   "attention probabilities"},
        "kernel_initializer": initializer("glorot_uniform"),
        "bias_initializer": initializer("zeros"),
        "kernel_regularizer": REGULARIZER,
        "bias_regularizer": REGULARIZER,
    }
    REQUIRED = ("num_heads", "key_dim")
    INPUTS = (2, 4)

    # -- inputs ----------------------------------------------------------------------
    def _split(self, items: list) -> tuple:
        """(query, value, key, mask) from the call's inputs; key and mask may be None."""
        count = len(items) - (1 if self.attention_mask else 0)
        if count not in (2, 3):
            mask = " and, last, the attention mask" if self.attention_mask else ""
            raise ShapeError(f"{self.TYPE} layer '{self.name}' takes query, value and "
                             f"optionally key{mask}: got {len(items)} input tensor(s)")
        query, value = items[0], items[1]
        key = items[2] if count == 3 else value
        mask = items[-1] if self.attention_mask else None
        return query, value, key, mask

    @property
    def _value_dim(self) -> int:
        return self.value_dim or self.key_dim

    def _out_dims(self, query_shape) -> tuple:
        given = self.config["output_shape"]     # not self.output_shape: Keras' accessor
        if given is None:
            return (query_shape[-1],)
        return (given,) if isinstance(given, int) else tuple(given)

    # -- the contract ------------------------------------------------------------------
    def compute_output_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        query, value, key, mask = self._split([tuple(s) for s in input_shapes])
        for role, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != 3 or shape[-1] is None:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': the {role} must have "
                                 f"shape (steps, features) with known features, got "
                                 f"{shape[1:]} (attention over several axes is not "
                                 "offered)")
        if None not in (key[1], value[1]) and key[1] != value[1]:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': key and value must have the "
                             f"same number of steps, got {key[1]} and {value[1]}")
        if mask is not None:
            self._check_mask(mask, query[1], value[1])
        outputs = [query[:-1] + self._out_dims(query)]
        if self.return_attention_scores:
            outputs.append((None, self.num_heads, query[1], value[1]))
        return outputs

    def _check_mask(self, mask, steps_q, steps_k):
        fits = len(mask) == 3 and all(
            m is None or m == 1 or n is None or m == n
            for m, n in zip(mask[1:], (steps_q, steps_k)))
        if not fits:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': the attention mask must "
                             f"have shape (query steps, key steps) = ({steps_q}, "
                             f"{steps_k}) (1 broadcasts), got {mask[1:]}")

    def weight_specs(self, input_shapes):
        query, value, key, _ = self._split([tuple(s) for s in input_shapes])
        heads, kdim, vdim = self.num_heads, self.key_dim, self._value_dim
        sizes = {"query": (query[-1], kdim), "key": (key[-1], kdim), "value": (value[-1], vdim)}
        specs = []
        for role in _PROJECTIONS:            # Keras' order: query, key, value, output
            features, per_head = sizes[role]
            specs.append(WeightSpec(f"{role}_kernel", (features, heads, per_head),
                                    self.kernel_initializer))
            if self.use_bias:
                specs.append(WeightSpec(f"{role}_bias", (heads, per_head),
                                        self.bias_initializer))
        out = self._out_dims(query)
        specs.append(WeightSpec("attention_output_kernel", (heads, vdim) + out,
                                self.kernel_initializer))
        if self.use_bias:
            specs.append(WeightSpec("attention_output_bias", out, self.bias_initializer))
        return specs

    def weight_regularizers(self) -> dict:
        """kernel_regularizer / bias_regularizer apply to all four projections, as in
        Keras (each EinsumDense gets them)."""
        out = {}
        for arg, suffix in (("kernel_regularizer", "kernel"), ("bias_regularizer", "bias")):
            config = self.config.get(arg)
            if config is None:
                continue
            names = [n for n in self.weight_shapes if n.endswith("_" + suffix)]
            if not names:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': {arg} is set, but the "
                                 f"layer has no {suffix} weights (use_bias is false)")
            out.update({n: (arg, config) for n in names})
        return out

    def forward(self, inputs, ctx):
        query, value, key, mask = self._split(list(inputs))
        w = self.weights
        bias = (lambda role: w[f"{role}_bias"]) if self.use_bias else (lambda role: None)
        q = project(query, w["query_kernel"], bias("query"))
        k = project(key, w["key_kernel"], bias("key"))
        v = project(value, w["value_kernel"], bias("value"))
        scores = attention_scores(q, k, 1.0 / math.sqrt(self.key_dim))
        probs = masked_softmax(scores, self._keep(mask, scores.shape))
        attended = probs
        if ctx.training and self.dropout > 0:
            attended = ops.mul(probs, dropout_keep(probs.shape, self.dropout, ctx.rng,
                                                   probs.data.dtype))
        combined = attention_combine(attended, v)
        out = project(combined, w["attention_output_kernel"],
                      bias("attention_output"), bound=2)
        return [out, probs] if self.return_attention_scores else [out]

    def _keep(self, mask, scores_shape):
        """The boolean (B or 1, 1, T, S) 'may attend' array, or None for no mask."""
        keep = None
        if mask is not None:
            keep = (mask.data != 0)[:, None, :, :]
        if self.use_causal_mask:
            causal = causal_keep(scores_shape[2], scores_shape[3])
            keep = causal if keep is None else np.logical_and(keep, causal)
        return keep
