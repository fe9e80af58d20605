"""Attention ops: scores, masked softmax and the weighted sum, forward and backward.

Multi-head tensors use Keras' layout after the projections: ``(batch, steps, heads,
dim)``; scores and probabilities are ``(batch, heads, query steps, key steps)``. Every
product is one batched ``np.matmul`` over (batch, heads): no Python loop over heads.

>>> q = np.ones((2, 3, 4, 5)); k = np.ones((2, 6, 4, 5))
>>> attention_scores(q, k, 0.5).shape
(2, 4, 3, 6)
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result
from .linalg import linear
from .shape import reshape

# Keras' fill for masked scores (``layers/activations/softmax.py``): masked scores are
# replaced by it, so a row with every key masked becomes uniform, as in Keras.
MASK_FILL = -1e9


def attention_scores(q, k, scale: float = 1.0) -> Variable:
    """``scale * q . k`` per head: q ``(B, T, N, H)``, k ``(B, S, N, H)`` -> ``(B, N, T, S)``."""
    q, k = as_variable(q), as_variable(k)
    qt = q.data.transpose(0, 2, 1, 3)                       # (B, N, T, H)
    kt = k.data.transpose(0, 2, 1, 3)                       # (B, N, S, H)
    dtype = np.result_type(q.data, k.data)
    factor = dtype.type(scale)
    out = np.matmul(qt, kt.swapaxes(-1, -2)) * factor

    def backward(g):
        g = g * factor
        gq = np.matmul(g, kt).transpose(0, 2, 1, 3) if q.requires_grad else None
        gk = np.matmul(g.swapaxes(-1, -2), qt).transpose(0, 2, 1, 3) \
            if k.requires_grad else None
        return gq, gk
    return result(out, (q, k), backward)


def attention_combine(probs, v) -> Variable:
    """Probabilities ``(B, N, T, S)`` times values ``(B, S, N, V)`` -> ``(B, T, N, V)``."""
    probs, v = as_variable(probs), as_variable(v)
    vt = v.data.transpose(0, 2, 1, 3)                       # (B, N, S, V)
    out = np.matmul(probs.data, vt).transpose(0, 2, 1, 3)

    def backward(g):
        gt = g.transpose(0, 2, 1, 3)                        # (B, N, T, V)
        gp = np.matmul(gt, vt.swapaxes(-1, -2)) if probs.requires_grad else None
        gv = np.matmul(probs.data.swapaxes(-1, -2), gt).transpose(0, 2, 1, 3) \
            if v.requires_grad else None
        return gp, gv
    return result(out, (probs, v), backward)


def masked_softmax(scores, keep=None) -> Variable:
    """Softmax over the last axis; where the boolean ``keep`` (broadcastable to
    ``scores``) is False the score is replaced by ``MASK_FILL`` first (Keras' Softmax
    with a mask), so those positions get no probability and no gradient."""
    scores = as_variable(scores)
    x = scores.data
    if keep is not None:
        x = np.where(keep, x, x.dtype.type(MASK_FILL))
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    out = shifted / shifted.sum(axis=-1, keepdims=True)

    def backward(g):
        gs = out * (g - (g * out).sum(axis=-1, keepdims=True))
        return (gs if keep is None else np.where(keep, gs, 0),)
    return result(out, (scores,), backward)


def causal_keep(query_steps: int, key_steps: int) -> np.ndarray:
    """Keras' causal mask ``(Tq, Tk)``: query step i sees key steps j <= i."""
    return np.arange(query_steps)[:, None] >= np.arange(key_steps)[None, :]


def dropout_keep(shape, rate: float, rng: np.random.Generator, dtype) -> Variable:
    """Inverted-dropout multiplier (a constant for the tape), as layers/dropout.py."""
    return Variable((rng.random(shape) >= rate).astype(dtype) / dtype.type(1 - rate))


def project(x, kernel, bias=None, bound: int = 1) -> Variable:
    """Keras' EinsumDense as MultiHeadAttention builds it: the last ``bound`` axes of
    ``x`` contract with the first ``bound`` axes of ``kernel``; the kernel's other axes
    are appended (``(B, T, d) x (d, N, H) -> (B, T, N, H)``), plus ``bias`` of the
    appended shape. One GEMM through :func:`linear` on flattened views."""
    x, kernel = as_variable(x), as_variable(kernel)
    lead, inner = x.shape[:x.data.ndim - bound], kernel.shape[:bound]
    tail = kernel.shape[bound:]
    size_in, size_out = int(np.prod(inner)), int(np.prod(tail))
    flat = reshape(x, (-1, size_in))
    w = reshape(kernel, (size_in, size_out))
    b = None if bias is None else reshape(bias, (size_out,))
    return reshape(linear(flat, w, b), tuple(lead) + tuple(tail))
