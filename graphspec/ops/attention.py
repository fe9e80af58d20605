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

# Keras' fill for masked scores in its Softmax layer (``layers/activations/softmax.py``).
MASK_FILL = -1e9
# What a masked score becomes, per Keras code path (each a different fully masked row):
# "fill"     Keras' Softmax layer (MultiHeadAttention when it returns scores or has
#            dropout): the score is replaced by -1e9 and the probability zeroed after,
#            so a fully masked row is all zeros.
# "bias"     Keras' torch dot_product_attention (MultiHeadAttention otherwise): -0.7 *
#            3.38953e38 is added, which swallows the score, so a fully masked row is
#            uniform over every key whatever the scores: its exact gradient to the scores
#            is 0. (torch's flash kernel back-propagates S times more there, and 1 rather
#            than 1/S to each value; graphspec keeps the derivative of the forward.)
# "subtract" Keras' Attention._apply_scores: 1e9 is subtracted, so in float64 a fully
#            masked row keeps its unmasked softmax, in float32 it rounds to near uniform;
#            the gradient passes to every score, as through Keras' subtraction.
MASK_MODES = ("fill", "bias", "subtract")


def _large_negative(how: str, dtype) -> float:
    half = np.dtype(dtype).itemsize == 2        # Keras' float16 constants
    if how == "bias":
        return -0.7 * (65500.0 if half else 3.38953e38)
    if how == "subtract":
        return -(65504.0 if half else 1e9)
    return -3e4 if half else MASK_FILL


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


def _masked_logits(x, keep, how: str):
    big = x.dtype.type(_large_negative(how, x.dtype))
    if how == "fill":
        return np.where(keep, x, big)
    if how == "bias":
        return x + np.where(keep, x.dtype.type(0), big)
    if how == "subtract":
        return np.where(keep, x, x + big)
    raise ValueError(f"unknown mask mode {how!r}; one of {MASK_MODES}")


def masked_softmax(scores, keep=None, how: str = "fill", axis=-1) -> Variable:
    """Softmax over ``axis`` (an int or a tuple of axes normalised together) with the
    boolean ``keep`` (broadcastable to ``scores``, True = attend) applied as Keras does
    on the code path ``how`` (see ``MASK_MODES``)."""
    scores = as_variable(scores)
    x = scores.data
    if keep is not None:
        x = _masked_logits(x, keep, how)
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    probs = shifted / shifted.sum(axis=axis, keepdims=True)
    zeroed = keep is not None and how == "fill"
    # "fill" and "bias" leave a constant where a score is masked (no gradient there);
    # "fill" also zeroes those probabilities (no gradient comes back through them).
    cut = keep is not None and how in ("fill", "bias")
    out = np.where(keep, probs, probs.dtype.type(0)) if zeroed else probs

    def backward(g):
        if zeroed:
            g = np.where(keep, g, g.dtype.type(0))
        gs = probs * (g - (g * probs).sum(axis=axis, keepdims=True))
        return (np.where(keep, gs, gs.dtype.type(0)) if cut else gs,)
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
