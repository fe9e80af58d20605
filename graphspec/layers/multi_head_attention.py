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

``E`` is ``output_shape`` or the query's last size. Dropout (training only) drops
probabilities. ``use_causal_mask`` and ``return_attention_scores`` are Keras call
arguments; here they are the layer's (every call of one layer uses the same).

Masks, as Keras' ``call`` and ``_compute_attention_mask``: a query may attend to a key
where the ``attention_mask`` input, the causal mask, the query's mask ``(B, T, 1)``, the
value's mask ``(B, 1, S)`` and the key's mask ``(B, 1, S)`` (a separate key input only)
all allow it. The output carries the query's mask; the scores carry none. A query with
no key to attend to (a padded query) gets what Keras' code path gives: with dropout or
``return_attention_scores`` Keras uses its Softmax layer (zero probabilities, so the
output is the output bias), otherwise torch's ``scaled_dot_product_attention`` with a
huge negative bias (uniform probabilities over every key); see ``ops.attention``.

Inputs of higher rank ``(B, d1, ..., dk, features)`` attend over ``attention_axes``
(Keras: default every axis but batch and features, jointly; a negative axis a means
``rank + a``); the other axes are carried like the batch and must be equal between the
query and the key/value. Internally the carried axes are folded into the batch and the
attention axes into one step axis, which is exactly Keras' joint softmax. Scores are
then ``(B, *carried, heads, *query attention axes, *key attention axes)``, as Keras
returns them. The attention mask and the causal mask are for rank-3 inputs (Keras
builds the causal mask from axis 1 only).
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
        "attention_axes": {"type": ["integer", "array", "null"], "default": None,
                           "minimum": -64, "maximum": 64,
                           "items": {"type": "integer", "minimum": -64, "maximum": 64},
                           "minItems": 1, "maxItems": 8,
                           "description": "axes attended over (inputs of rank > 3); null: "
                                          "every axis but batch and features"},
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
    SUPPORTS_MASKING = True     # Keras' default compute_mask: the query's mask
    USES_MASK = True

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
    def layout(self, rank: int) -> tuple:
        """``(carried axes, attention axes)`` of rank-``rank`` inputs, batch excluded."""
        given = self.attention_axes
        inner = range(1, rank - 1)
        if given is None:
            return (), tuple(inner)
        axes = []
        for a in (given if isinstance(given, list) else [given]):
            axis = a + rank if a < 0 else a      # Keras: (projected rank - 1) + a
            if axis not in inner or axis in axes:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': attention axis {a} is "
                                 f"not a distinct axis between the batch and the features "
                                 f"of rank-{rank} inputs")
            axes.append(axis)
        return tuple(i for i in inner if i not in axes), tuple(sorted(axes))

    def compute_output_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        query, value, key, mask = self._split([tuple(s) for s in input_shapes])
        rank = len(query)
        for role, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != rank or rank < 3 or shape[-1] is None:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': the {role} must have "
                                 f"shape (steps..., features) with known features and the "
                                 f"query's rank, got {shape[1:]}")
        if any(None not in (k, v) and k != v for k, v in zip(key[1:-1], value[1:-1])):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': key and value must have the "
                             f"same number of steps, got {key[1:-1]} and {value[1:-1]}"
                             if rank > 3 else
                             f"{self.TYPE} layer '{self.name}': key and value must have the "
                             f"same number of steps, got {key[1]} and {value[1]}")
        carried, attended = self.layout(rank)
        if any(None not in (query[i], value[i]) and query[i] != value[i] for i in carried):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': the axes {list(carried)} not "
                             f"attended over must be equal in the query and the value, got "
                             f"{query[1:-1]} and {value[1:-1]}")
        if rank > 3 and (mask is not None or self.use_causal_mask):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': attention_mask and "
                             "use_causal_mask need rank-3 inputs (steps, features)")
        if mask is not None:
            self._check_mask(mask, query[1], value[1])
        outputs = [query[:-1] + self._out_dims(query)]
        if self.return_attention_scores:
            outputs.append((None,) + tuple(query[i] for i in carried) + (self.num_heads,)
                           + tuple(query[i] for i in attended)
                           + tuple(value[i] for i in attended))
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
        return self.forward_masked(inputs, [None] * len(inputs), ctx)

    def forward_masked(self, inputs, masks, ctx):
        query, value, key, mask = self._split(list(inputs))
        q_mask, v_mask, k_mask, _ = self._split(list(masks))
        if len(inputs) - (1 if self.attention_mask else 0) == 2:
            k_mask = None           # Keras: no key given, so no key mask (the value's)
        if query.data.ndim > 3:
            if any(m is not None for m in (q_mask, v_mask, k_mask)):
                raise ShapeError(f"{self.TYPE} layer '{self.name}': masked inputs need "
                                 "rank 3 (steps, features); Keras' mask shapes do not "
                                 "fit more attention axes")
            return self._forward_folded(query, value, key, ctx)
        keep = self._keep(mask, (q_mask, v_mask, k_mask), query.shape[1], value.shape[1])
        return self._attend(query, value, key, keep, ctx)

    def _forward_folded(self, query, value, key, ctx):
        """Rank > 3: carried axes folded into the batch, attention axes into one step
        axis, attention on rank-3 tensors, then unfolded to Keras' shapes."""
        rank = query.data.ndim
        carried, attended = self.layout(rank)
        order = (0,) + carried + attended + (rank - 1,)

        def fold(x):
            x = ops.permute(x, order) if order != tuple(range(rank)) else x
            steps = int(np.prod([x.shape[1 + len(carried) + i] for i in range(len(attended))]))
            return ops.reshape(x, (-1, steps, x.shape[-1]))
        outs = self._attend(fold(query), fold(value), fold(key), None, ctx)
        shape = query.shape
        lead = (shape[0],) + tuple(shape[i] for i in carried)
        q_att = tuple(shape[i] for i in attended)
        out = ops.reshape(outs[0], lead + q_att + tuple(outs[0].shape[2:]))
        tail = out.data.ndim - (rank - 1)           # the output's own (E) axes
        back = tuple(np.argsort(order[:-1])) + tuple(range(rank - 1, rank - 1 + tail))
        out = ops.permute(out, back) if back != tuple(range(out.data.ndim)) else out
        if not self.return_attention_scores:
            return [out]
        k_att = tuple(value.shape[i] for i in attended)
        return [out, ops.reshape(outs[1], lead + (self.num_heads,) + q_att + k_att)]

    def _attend(self, query, value, key, keep, ctx):
        """Attention on rank-3 inputs: outputs ``[out]`` or ``[out, probabilities]``;
        ``keep``: the boolean (B or 1, 1, T, S) 'may attend' array, or None."""
        w = self.weights
        bias = (lambda role: w[f"{role}_bias"]) if self.use_bias else (lambda role: None)
        q = project(query, w["query_kernel"], bias("query"))
        k = project(key, w["key_kernel"], bias("key"))
        v = project(value, w["value_kernel"], bias("value"))
        scores = attention_scores(q, k, 1.0 / math.sqrt(self.key_dim))
        # Keras' fused path (torch's scaled_dot_product_attention) unless it must
        # return or drop the probabilities: the two treat fully masked rows differently
        fused = self.dropout == 0 and not self.return_attention_scores
        probs = masked_softmax(scores, keep, "bias" if fused else "fill")
        attended = probs
        if ctx.training and self.dropout > 0:
            attended = ops.mul(probs, dropout_keep(probs.shape, self.dropout, ctx.rng,
                                                   probs.data.dtype))
        combined = attention_combine(attended, v)
        out = project(combined, w["attention_output_kernel"],
                      bias("attention_output"), bound=2)
        return [out, probs] if self.return_attention_scores else [out]

    def _keep(self, mask, tensor_masks, steps_q, steps_k):
        """Keras' ``_compute_attention_mask``: the AND of the attention mask input, the
        query mask ``(B, T, 1)``, the value and key masks ``(B, 1, S)`` and the causal
        mask, as ``(B or 1, 1, T, S)`` for the heads axis; None when there is none."""
        q_mask, v_mask, k_mask = tensor_masks
        parts = []
        if q_mask is not None:
            parts.append(np.asarray(q_mask, bool)[:, :, None])
        parts += [np.asarray(m, bool)[:, None, :] for m in (v_mask, k_mask) if m is not None]
        if self.use_causal_mask:
            parts.append(causal_keep(steps_q, steps_k)[None])
        if mask is not None:
            parts.append(mask.data != 0)        # Keras casts it to bool
        if not parts:
            return None
        keep = parts[0]
        for part in parts[1:]:
            keep = np.logical_and(keep, part)
        return keep[:, None, :, :]
