"""What the fused recurrent ops (``recurrent.py``, ``recurrent_gru.py``) share: the
activations with derivatives from their outputs, the gate-major weight layout, dropout
masks, and Keras' step mask and initial states.

Keras' step mask (``RNN.call(mask=...)``, ``backend.rnn``): at a masked step the states
carry over unchanged, and the step's output is the previous step's output (zeros before
the first kept step, even when the initial state is not zero), or zeros outright with
``zero_output_for_mask`` (which Keras' Bidirectional turns on with
``return_sequences``). Since a state that carries over is the output of the last kept
step, every output is the step's state times a 0/1 factor (:class:`StepMask`), and the
gradient of a masked step flows unchanged to the previous state (:func:`carry_over`).
"""
from __future__ import annotations

import weakref

import numpy as np

from ..autodiff.engine import as_variable

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# -- activations: in place forward, derivative from the output ---------------------------
# Every recurrent activation must have a derivative expressible from its output alone,
# so the backward needs no pre-activations. (GELU and softmax do not qualify.)

def _tanh(x, out):
    np.tanh(x, out=out)


def _sigmoid(x, out):
    # tanh form: stable for both signs and, in float32, several times faster than
    # scipy's expit on this hardware
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5


def _hard_sigmoid(x, out):
    # Keras 3: relu6(x + 3) / 6 == clip(x / 6 + 0.5, 0, 1)
    np.multiply(x, 1.0 / 6.0, out=out)
    out += 0.5
    np.clip(out, 0.0, 1.0, out=out)


def _relu(x, out):
    np.maximum(x, 0, out=out)


def _linear(x, out):
    if out is not x:
        np.copyto(out, x)


def _elu(x, out):
    np.copyto(out, np.where(x > 0, x, np.expm1(np.minimum(x, 0))))


def _selu(x, out):
    np.copyto(out, SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))))


def _softplus(x, out):
    np.logaddexp(0, x, out=out)


def _d_tanh(y):
    return 1 - y * y


def _d_sigmoid(y):
    return y * (1 - y)


def _d_hard_sigmoid(y):
    return ((y > 0) & (y < 1)).astype(y.dtype) * (1.0 / 6.0)


def _d_relu(y):
    return (y > 0).astype(y.dtype)


def _d_linear(y):
    return np.ones_like(y)


def _d_elu(y):
    return np.where(y > 0, 1, y + 1).astype(y.dtype, copy=False)


def _d_selu(y):
    return np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA).astype(y.dtype, copy=False)


def _d_softplus(y):
    return -np.expm1(-y)


RECURRENT_ACTIVATIONS = {
    "tanh": (_tanh, _d_tanh), "sigmoid": (_sigmoid, _d_sigmoid),
    "hard_sigmoid": (_hard_sigmoid, _d_hard_sigmoid), "relu": (_relu, _d_relu),
    "linear": (_linear, _d_linear), "elu": (_elu, _d_elu), "selu": (_selu, _d_selu),
    "softplus": (_softplus, _d_softplus),
}


# -- shared plumbing ------------------------------------------------------------------------
# Inside the ops everything is *gate-major and time-major*: gate pre-activations live in
# ``(gates, T, B, units)`` so that one gate at one timestep is a contiguous ``(B, units)``
# block (numpy's elementwise loops are several times slower on strided column slices),
# and one recurrent product per step is a single batched matmul ``h @ U[gates]``.
# Weights are rearranged into that layout per call (cheap: they are small) and their
# gradients are put back into Keras' layout at the end.


def prepare(x, kernel, recurrent_kernel, bias, go_backwards):
    """What every recurrent op starts from: the variables, the time-major input, and
    the weights as arrays in the input's dtype."""
    x, kernel, recurrent_kernel, bias, parents = _variables(x, kernel, recurrent_kernel, bias)
    dtype, dims, xa = _time_major_input(x, kernel, go_backwards)
    w, u = (v.data.astype(dtype, copy=False) for v in (kernel, recurrent_kernel))
    b = None if bias is None else bias.data.astype(dtype, copy=False)
    return (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
            recurrent_kernel.shape[0], w, u, b)


def _variables(x, kernel, recurrent_kernel, bias):
    x, kernel, recurrent_kernel = (as_variable(v) for v in (x, kernel, recurrent_kernel))
    bias = None if bias is None else as_variable(bias)
    parents = (x, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return x, kernel, recurrent_kernel, bias, parents


def _time_major_input(x, kernel, go_backwards):
    """The compute dtype, (B, T, F), and the input as rows ``(t, b)`` of ``(T*B, F+1)``
    whose last column is ones (it carries the input bias through the projection GEMM)."""
    xd = x.data
    if xd.ndim != 3:
        raise ValueError(f"recurrent op expects (batch, timesteps, features) input, "
                         f"got shape {xd.shape}")
    batch, steps, features = xd.shape
    if steps == 0:
        raise ValueError("recurrent op needs at least one timestep, got 0")
    dtype = xd.dtype if np.issubdtype(xd.dtype, np.floating) else kernel.data.dtype
    xa = np.empty((steps, batch, features + 1), dtype)
    np.copyto(xa[..., :features], (xd[:, ::-1] if go_backwards else xd).transpose(1, 0, 2),
              casting="unsafe")
    xa[..., features] = 1
    return dtype, (batch, steps, features), xa.reshape(steps * batch, features + 1)


def internal_masks(input_mask, recurrent_mask, order, dtype):
    """Dropout masks in the internal gate order and compute dtype (None stays None)."""
    def one(mask):
        if mask is None:
            return None
        mask = np.asarray(mask, dtype)
        if mask.ndim != 3 or mask.shape[0] not in (1, len(order)):
            raise ValueError(f"recurrent dropout mask must be (1 or {len(order)}, batch, "
                             f"width), got shape {mask.shape}")
        return mask if mask.shape[0] == 1 else mask[list(order)]
    return one(input_mask), one(recurrent_mask)


def masked_inputs(xa, mx, dims):
    """The ``(T*B, F+1)`` input rows with the dropout masks applied: ``(G or 1, T*B, F+1)``
    (the bias column of ones stays unmasked)."""
    batch, steps, features = dims
    if mx is None:
        return xa[None]
    ma = np.ones((len(mx), batch, features + 1), xa.dtype)
    ma[..., :features] = mx
    return (xa.reshape(1, steps, batch, features + 1) * ma[:, None]).reshape(
        len(mx), steps * batch, features + 1)


def masked_states(hs, mh):
    """Previous states ``(T-1, B, n)`` as the recurrent products see them:
    ``(G or 1, (T-1)*B, n)``, masked by the recurrent dropout masks."""
    n = hs.shape[-1]
    if mh is None:
        return hs.reshape(1, -1, n)
    return (hs[None] * mh[:, None]).reshape(len(mh), -1, n)


def gate_major(mat, order, n):
    """``(rows, G*n)`` Keras blocks -> ``(G, rows, n)`` in the internal gate ``order``."""
    return np.stack([mat[..., k * n:(k + 1) * n] for k in order])


def keras_layout(d, order, n):
    """Inverse of :func:`gate_major`: ``(G, rows, n)`` -> ``(rows, G*n)``."""
    out = np.empty(d.shape[1:-1] + (len(order) * n,), d.dtype)
    for pos, k in enumerate(order):
        out[..., k * n:(k + 1) * n] = d[pos]
    return out


def input_weights(w, b, order, n, dtype):
    """``(G, F+1, n)``: the kernel blocks with the input bias as an extra row."""
    wa = np.zeros((len(order), w.shape[0] + 1, n), dtype)
    wa[:, :-1] = gate_major(w, order, n)
    if b is not None:
        wa[:, -1] = gate_major(b, order, n)
    return wa


def input_grad(x, blocks, wa, dims, go_backwards, mask=None):
    """Gradient w.r.t. the ``(B, T, F)`` input: ``sum_k (d_k @ W_k.T) * mask_k`` over
    gate blocks (``mask``: internal-order ``(G or 1, B, F)`` dropout masks, or None)."""
    if not x.requires_grad or not np.issubdtype(x.data.dtype, np.floating):
        return None
    batch, steps, features = dims
    dx = None
    for k, d in enumerate(blocks):
        term = d.reshape(steps * batch, -1) @ wa[k, :features].T
        if mask is not None and len(mask) > 1:
            term = (term.reshape(steps, batch, features) * mask[k]).reshape(steps * batch, -1)
        dx = term if dx is None else np.add(dx, term, out=dx)
    dx = dx.reshape(steps, batch, features)
    if mask is not None and len(mask) == 1:
        dx = dx * mask[0]
    dx = dx.transpose(1, 0, 2)
    if go_backwards:
        dx = dx[:, ::-1]
    return np.ascontiguousarray(dx, dtype=x.data.dtype)


def weight_grads(parents, d_wa, d_u, order, n, bias_of):
    """Kernel, recurrent kernel and bias gradients in Keras' layout."""
    _, kernel, recurrent_kernel = parents[:3]
    grads = [_cast(keras_layout(d_wa[:, :-1], order, n), kernel)
             if kernel.requires_grad else None,
             _cast(keras_layout(d_u, order, n), recurrent_kernel)
             if recurrent_kernel.requires_grad else None]
    if len(parents) > 3:
        grads.append(_cast(bias_of(), parents[3]) if parents[3].requires_grad else None)
    return grads


def derivative(d_fn, y, out):
    """``out = d_fn(y)``, in place for the common tanh and sigmoid (no temporaries)."""
    if d_fn is _d_sigmoid:
        np.subtract(1, y, out=out)
        out *= y
    elif d_fn is _d_tanh:
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    else:
        out[...] = d_fn(y)
    return out


def _cast(grad, var):
    return None if grad is None else grad.astype(var.data.dtype, copy=False)


def to_sigmoid(v):
    """``tanh(x / 2)`` -> ``sigmoid(x)``, in place (the halving is folded into weights)."""
    v *= 0.5
    v += 0.5


def sigmoid_scaled(weights, rows, gates, factor=0.5):
    """Copy of gate-major ``weights`` with the ``rows`` gates times ``factor`` (a power
    of two: exact in binary); 0.5 by default, the halving of ``sigmoid = tanh(x/2)``."""
    scale = np.ones(gates, weights.dtype)
    scale[list(rows)] = factor
    return weights * scale.reshape((gates,) + (1,) * (weights.ndim - 1))


# -- Keras' step mask, initial states, and the packed result -----------------------------------

class StepMask:
    """Keras' step mask in processing order, time-major, as ``(T, B, 1)`` arrays.

    ``keep`` (compute dtype): 1 where the step updates the state. ``drop`` (the same,
    ``1 - keep``) and ``dropped`` (bool): where the state carries over. ``out_scale``:
    each step's output as a factor of its state: ``keep`` with ``zero_output``, else 1
    from the first kept step on (before it Keras' 'previous output' is its zero start,
    whatever the initial state).
    """

    def __init__(self, step_mask, dims, go_backwards, dtype, zero_output):
        batch, steps, _ = dims
        mask = np.asarray(step_mask)
        if mask.shape != (batch, steps):
            raise ValueError(f"recurrent step mask must be (batch, timesteps) = "
                             f"{(batch, steps)}, got shape {mask.shape}")
        mask = mask.astype(bool, copy=False)
        if go_backwards:                  # Keras flips the mask with the inputs
            mask = mask[:, ::-1]
        kept = np.ascontiguousarray(mask.T)[..., None]
        self.dropped = ~kept
        self.keep = kept.astype(dtype)
        self.drop = self.dropped.astype(dtype)
        seen = kept if zero_output else np.logical_or.accumulate(kept, axis=0)
        self.out_scale = seen.astype(dtype)


def step_mask_of(step_mask, dims, go_backwards, dtype, zero_output):
    """A :class:`StepMask`, or None without a mask."""
    if step_mask is None:
        return None
    return StepMask(step_mask, dims, go_backwards, dtype, zero_output)


def initial_states(initial_state, count, batch, n, dtype):
    """``(states, zero, variables)``: ``count`` starting states ``(B, n)`` in ``dtype``,
    whether they are all zeros (the ops then skip the recurrent product of the first
    step), and the given states as Variables (the op's extra parents; empty when
    None). A state given as a Variable that requires a gradient gets one (Keras'
    ``initial_state`` from another layer, as in an encoder-decoder); a stateful layer
    passes plain arrays, so nothing flows into the previous batch (Keras detaches)."""
    if initial_state is None:
        return [np.zeros((batch, n), dtype) for _ in range(count)], True, []
    variables = [as_variable(s) for s in initial_state]
    states = [np.asarray(v.data, dtype) for v in variables]
    if len(states) != count or any(s.shape != (batch, n) for s in states):
        raise ValueError(f"recurrent initial state must be {count} array(s) of shape "
                         f"{(batch, n)}, got {[s.shape for s in states]}")
    return states, not any(s.any() for s in states), variables


def wants_grad(variables) -> bool:
    """Whether the backward must carry the gradient down to the initial states."""
    return any(v.requires_grad for v in variables)


def state_grads(variables, grads) -> list:
    """The initial states' gradients in their dtypes (None where none is wanted)."""
    return [g.astype(v.data.dtype, copy=True) if v.requires_grad else None
            for v, g in zip(variables, grads)]


def carry_over(d, sm, t):
    """At a masked step the state passed through unchanged: split the gradient ``d`` of
    step ``t``'s state, in place, into the part through the cell (kept rows, left in
    ``d``) and the part that flows straight to the previous state (returned; None
    without a mask)."""
    if sm is None:
        return None
    carry = d * sm.drop[t]
    d *= sm.keep[t]
    return carry


def hold_masked(states, t, sm):
    """Forward: the states of step ``t + 1`` keep step ``t``'s values where masked."""
    if sm is not None:
        for s in states:
            np.copyto(s[t + 1], s[t], where=sm.dropped[t])


def pack(hs, finals, sm):
    """The op's packed result ``(T + S, B, n)``: the output of every step (the states
    ``hs`` = h_1..h_T, scaled by Keras' mask rule), then the ``S`` final states."""
    steps = hs.shape[0]
    packed = np.empty((steps + len(finals),) + hs.shape[1:], hs.dtype)
    if sm is None:
        packed[:steps] = hs
    else:
        np.multiply(hs, sm.out_scale, out=packed[:steps])
    for k, state in enumerate(finals):
        packed[steps + k] = state
    return packed


def unpack(g, steps, sm):
    """Backward of :func:`pack`: ``(grads of h_1..h_T, grads of the other final
    states)``; the final h's grad joins h_T's."""
    gh = g[:steps] * sm.out_scale if sm is not None else g[:steps].copy()
    gh[steps - 1] += g[steps]
    return gh, g[steps + 1:]


# -- reusable work buffers ----------------------------------------------------------------------
# Big per-call arrays (gate blocks, local derivatives) as fresh memory cost first-touch
# page faults about as dear as the arithmetic (the LSTM training forward ran 1.7x slower
# on fresh buffers). So they come from a pool and go back when nothing can read them:
# at the end of an inference call, or when the backward closure holding them is released
# (the engine drops it after the backward pass unless retain_graph, or with the graph).

class Workspace:
    """Free arrays by (shape, dtype); at most ``per_key`` each and ``max_bytes`` in all
    (over that, everything is dropped: shapes changed, e.g. another batch size)."""

    def __init__(self, per_key=2, max_bytes=64 << 20):
        self.per_key, self.max_bytes = per_key, max_bytes
        self._free = {}
        self._bytes = 0

    def take(self, shape, dtype):
        free = self._free.get((tuple(shape), np.dtype(dtype)))
        if free:
            try:
                array = free.pop()       # atomic: threads never share an array
                self._bytes -= array.nbytes
                return array
            except IndexError:
                pass
        return np.empty(shape, dtype)

    def give(self, *arrays):
        for array in arrays:
            free = self._free.setdefault((array.shape, array.dtype), [])
            if len(free) < self.per_key:
                free.append(array)
                self._bytes += array.nbytes
        if self._bytes > self.max_bytes:
            self._free, self._bytes = {}, 0

    def give_when_released(self, owner, *arrays):
        """Give ``arrays`` back once ``owner`` (a backward closure) is garbage."""
        weakref.finalize(owner, self.give, *arrays)


WORKSPACE = Workspace()
