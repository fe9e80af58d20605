"""Fused recurrent ops: SimpleRNN, LSTM and GRU over a whole sequence, forward and
backward (BPTT) side by side. The GRU is in ``recurrent_gru.py``; what the three share
(activations, weight layout, dropout and step masks) in ``recurrent_base.py``.

Why fused: composing one tape op per gate per timestep costs hundreds of closures per
sequence. Here each layer is one op: the input projection of every timestep is one
GEMM, each timestep costs one recurrent (batched) matmul plus a handful of in-place
elementwise calls on preallocated buffers, and the backward mirrors it: the local
derivatives of all timesteps are computed at once, the loop only carries the
recurrence, and the weight gradients are again one GEMM per gate.

Each op returns one *packed* Variable ``(T + S, B, units)``, time-major: the output of
every step in processing order, then the ``S`` final states (h; h and c for the LSTM);
:func:`sequence_of` and :func:`step_of` turn it into the layer's outputs, and their
gradients flow back into the packed array.

Weights and biases use Keras' layouts (LSTM gates ``[i, f, c, o]``, GRU ``[z, r, h]``).
``go_backwards`` processes the sequence from its end and the outputs are in processing
order (Keras returns the reversed sequence too).

``step_mask`` ``(B, T)`` (bool, True = use the step) is Keras' RNN mask: masked steps
keep the states and repeat the previous output (zeros with ``zero_output``);
``initial_state`` (arrays, zeros when None) starts the recurrence and gets no gradient
(stateful layers: Keras detaches the carried state). See ``recurrent_base.py``.

Dropout (training only, Keras 3's ``DropoutRNNCell``): ``input_mask`` ``(G, B, F)`` and
``recurrent_mask`` ``(G, B, units)`` multiply the input ``x_t`` and the previous state
``h_{t-1}`` before their products with the kernels, the same masks at every timestep.
``G`` is 1 (one mask shared by every gate) or the number of gates, in Keras' gate order
(one mask per gate, Keras' ``implementation=1``). The state carried on (and the
``z * h_{t-1}`` of the GRU) is the unmasked one, as in Keras.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, is_recording, result
from .recurrent_base import (RECURRENT_ACTIVATIONS, carry_over, derivative, gate_major,
                             hold_masked, initial_states, input_grad, input_weights,
                             internal_masks, keras_layout, masked_inputs, masked_states,
                             pack, prepare, sigmoid_scaled, state_grads,
                             step_mask_of, to_sigmoid, unpack, wants_grad, weight_grads,
                             WORKSPACE)
from .recurrent_gru import GRU_ORDER, gru

__all__ = ["RECURRENT_ACTIVATIONS", "GRU_ORDER", "LSTM_ORDER", "simple_rnn", "lstm", "gru",
           "sequence_of", "step_of", "reverse_time"]


# -- SimpleRNN ------------------------------------------------------------------------------

def simple_rnn(x, kernel, recurrent_kernel, bias=None, activation="tanh",
               go_backwards=False, input_mask=None, recurrent_mask=None, step_mask=None,
               initial_state=None, zero_output=False) -> Variable:
    """``h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Returns the packed ``(T + 1, B, units)``: the outputs, then the final h.
    """
    (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
     n, w, u, b) = prepare(x, kernel, recurrent_kernel, bias, go_backwards)
    batch, steps, _ = dims
    order = (0,)
    mx, mh = internal_masks(input_mask, recurrent_mask, order, dtype)
    sm = step_mask_of(step_mask, dims, go_backwards, dtype, zero_output)
    (h0,), zero_start, starts = initial_states(initial_state, 1, batch, n, dtype)
    first = 1 if zero_start else 0       # a zero state needs no recurrent product
    grad_start = wants_grad(starts)
    xm = masked_inputs(xa, mx, dims)
    wa = input_weights(w, b, order, n, dtype)
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    pre = (xm[0] @ wa[0]).reshape(steps, batch, n)
    hs = np.empty((steps + 1, batch, n), dtype)   # hs[0] is the initial state
    hs[0] = h0
    rec = np.empty((batch, n), dtype)
    for t in range(steps):
        if t >= first:
            np.matmul(hs[t] if mh is None else hs[t] * mh[0], u, out=rec)
            pre[t] += rec
        act(pre[t], hs[t + 1])
        hold_masked((hs,), t, sm)

    def backward(g):
        gh, _ = unpack(g.astype(dtype, copy=False), steps, sm)
        # local derivatives (any value at masked steps: their grads are zeroed), then
        # the pre-activation grads
        d_pre = d_act(hs[1:])
        d_next = np.zeros((batch, n), dtype)
        ut = np.ascontiguousarray(u.T)
        for t in range(steps - 1, -1, -1):
            np.add(gh[t], d_next, out=d_next)
            carry = carry_over(d_next, sm, t)
            np.multiply(d_pre[t], d_next, out=d_pre[t])
            if t or grad_start:          # at t = 0: the initial state's gradient
                np.matmul(d_pre[t], ut, out=d_next)
                if mh is not None:
                    d_next *= mh[0]
                if carry is not None:
                    d_next += carry
        flat = d_pre.reshape(steps * batch, n)
        d_wa = (xm[0].T @ flat)[None]
        d_u = (masked_states(hs[first:steps], mh)[0].T @ flat[first * batch:])[None]
        return tuple([input_grad(x, d_pre[None], wa, dims, go_backwards, mx)]
                     + weight_grads(parents, d_wa, d_u, order, n, lambda: d_wa[0, -1])
                     + state_grads(starts, [d_next]))

    return result(pack(hs[1:], [hs[steps]], sm), parents + tuple(starts), backward)


# -- LSTM -----------------------------------------------------------------------------------

LSTM_ORDER = (3, 0, 1, 2)   # internal gates o, i, f, c (Keras blocks are i, f, c, o)


def lstm(x, kernel, recurrent_kernel, bias=None, activation="tanh",
         recurrent_activation="sigmoid", go_backwards=False, input_mask=None,
         recurrent_mask=None, step_mask=None, initial_state=None,
         zero_output=False) -> Variable:
    """Keras' LSTM cell over a sequence, gate order ``[i, f, c, o]``::

        i, f, o = rec_act(.)   c~ = act(.)   c_t = f c_{t-1} + i c~   h_t = o act(c_t)

    ``initial_state``: ``(h_0, c_0)``. Returns the packed ``(T + 2, B, units)``: the
    outputs, then the final h and c.
    """
    (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
     n, w, u, b) = prepare(x, kernel, recurrent_kernel, bias, go_backwards)
    batch, steps, _ = dims
    order = LSTM_ORDER
    mx, mh = internal_masks(input_mask, recurrent_mask, order, dtype)
    sm = step_mask_of(step_mask, dims, go_backwards, dtype, zero_output)
    (h0, c0), zero_start, starts = initial_states(initial_state, 2, batch, n, dtype)
    first = 1 if zero_start else 0
    grad_start = wants_grad(starts)
    xm = masked_inputs(xa, mx, dims)
    fast = recurrent_activation == "sigmoid"
    wa = input_weights(w, b, order, n, dtype)        # (4, F+1, n)
    u4 = gate_major(u, order, n)                     # (4, n, n)
    wa_f = sigmoid_scaled(wa, (0, 1, 2), 4) if fast else wa
    u4_f = sigmoid_scaled(u4, (0, 1, 2), 4) if fast else u4
    # Training only (predict skips all of it): the local derivatives, taken in the
    # forward while each step's block is in cache (one pass each over the whole
    # sequence afterwards is memory-bound and cost more than the loop itself).
    train = is_recording() and any(v.requires_grad for v in parents + tuple(starts))

    gates = WORKSPACE.take((4, steps * batch, n), dtype)     # input pre-activations
    np.matmul(xm, wa_f, out=gates)
    cs = WORKSPACE.take((steps + 1, batch, n), dtype)        # c_0, c_1..c_T
    cs[0] = c0
    packed = np.empty((steps + 2, batch, n), dtype)
    if sm is None:               # h_t goes straight into the result
        hs, h_at = None, [h0] + list(packed[:steps])
    else:                        # h_0..h_T, scaled into the result by pack()
        hs = WORKSPACE.take((steps + 1, batch, n), dtype)
        hs[0] = h0
        h_at = list(hs)
    cell = _LSTMCell(activation, recurrent_activation, batch, n, dtype, steps if train
                     else 0)
    # Per-step views made once: at ~0.3 us each, slicing in the loop costs as much as
    # several of the in-cache elementwise calls.
    c_at = list(cs)
    for t, g_t in enumerate(gates.reshape(4, steps, batch, n).transpose(1, 0, 2, 3)):
        h_prev = h_at[t] if mh is None else h_at[t] * mh
        cell.step(t, g_t, h_prev if t >= first else None, u4_f, c_at[t], c_at[t + 1],
                  h_at[t + 1])
        if sm is not None:
            hold_masked((hs, cs), t, sm)
    if sm is None:
        packed[steps], packed[steps + 1] = h_at[steps], cs[steps]
    else:
        packed = pack(hs[1:], [hs[steps], cs[steps]], sm)
    WORKSPACE.give(gates, cs)
    if not train:
        if hs is not None:
            WORKSPACE.give(hs)
        return result(packed, parents + tuple(starts), None)

    # h_{t-1} of the steps with a recurrent product (for the recurrent kernel's grad)
    if hs is not None:
        h_prev_all = hs[first:steps]
    elif first:
        h_prev_all = packed[:steps - 1]
    else:
        h_prev_all = np.concatenate([h0[None], packed[:steps - 1]])
    # the local derivatives of the sigmoid gates are ``cell.scale`` times too large
    # (see _LSTMCell.activate): folded into the weights their grads meet (exact)
    scale = cell.scale
    u4t = np.ascontiguousarray(sigmoid_scaled(u4, (0, 1, 2), 4, scale).transpose(0, 2, 1))

    def backward(g):
        gh, dh_final, (dc,) = split_grad(g.astype(dtype, copy=False), steps, sm)
        grads = WORKSPACE.take((4, steps, batch, n), dtype)   # of the pre-activations
        d_states = _lstm_bptt(gh, dh_final, dc.copy(), cell, grads, u4t, mh, sm,
                              first=0 if grad_start else 1)
        flat = grads.reshape(4, steps * batch, n)
        d_wa, d_u = _lstm_weight_grads(xm, h_prev_all, mh, flat, first, batch)
        if scale != 1:
            d_wa[:3] *= scale
            d_u[:3] *= scale
        d_x = input_grad(x, flat, sigmoid_scaled(wa, (0, 1, 2), 4, scale), dims,
                         go_backwards, mx)
        WORKSPACE.give(grads)
        return tuple([d_x] + weight_grads(parents, d_wa, d_u, order, n,
                                          lambda: keras_layout(d_wa[:, -1], order, n))
                     + state_grads(starts, d_states))

    WORKSPACE.give_when_released(backward, *cell.saved(), *(() if hs is None else (hs,)))
    return result(packed, parents + tuple(starts), backward)


def split_grad(g, steps, sm):
    """Like :func:`unpack` without the copy of the unmasked step grads: ``(grads of
    h_1..h_T (a view unless masked), grad of the final h (a copy: the backward
    recurrence starts from it, which adds it to h_T's), grads of the other final
    states)``."""
    gh = g[:steps] * sm.out_scale if sm is not None else g[:steps]
    return gh, g[steps].copy(), g[steps + 1:]


def _lstm_weight_grads(xm, h_prev, mh, flat, first, batch):
    """The kernel (with the bias row) and recurrent kernel grads, gate-major:
    ``x_t^T d_t`` and ``h_{t-1}^T d_t`` summed over the steps. Without dropout both are
    one GEMM per gate over the rows ``[x_t, 1, h_{t-1}]``: OpenBLAS uses a 33-row
    operand poorly, and the joined 97-row one costs about what the 33 rows alone did
    (about 40% less than the two GEMMs on 2 threads; the copy is one pass)."""
    if len(xm) == 1 and mh is None:
        rows, cols = xm.shape[1:]
        n = h_prev.shape[-1]
        joined = np.empty((rows, cols + n), xm.dtype)
        joined[:, :cols] = xm[0]
        joined[first * batch:, cols:] = h_prev.reshape(-1, n)
        joined[:first * batch, cols:] = 0       # no recurrent product at a zero start
        both = np.matmul(joined.T, flat)
        return both[:, :cols], both[:, cols:]
    d_wa = np.matmul(xm.transpose(0, 2, 1), flat)
    d_u = np.matmul(masked_states(h_prev, mh).transpose(0, 2, 1), flat[:, first * batch:])
    return d_wa, d_u


def _lstm_bptt(gh, d_next, dc, cell, grads, u4t, mh, sm, first):
    """The backward recurrence from the grads of the final h (``d_next``) and c
    (``dc``): the pre-activation grads into ``grads`` (gate-major ``(4, T, B, n)``;
    d_o = local_o * dh, d_{i,f,c} = local_{i,f,c} * dc); returns the grads of the
    initial h and c (meaningful when ``first`` is 0)."""
    steps, batch, n = gh.shape
    dtype = gh.dtype
    dh, tmp = np.empty((batch, n), dtype), np.empty((batch, n), dtype)
    rec = np.empty((4, batch, n), dtype)
    for t, gh_t, dh_dc, local, d, forget in zip(
            range(steps - 1, -1, -1), gh[::-1], cell.dh_dc[::-1], cell.local_at[::-1],
            list(grads.transpose(1, 0, 2, 3))[::-1], cell.forget[::-1]):
        np.add(gh_t, d_next, out=dh)
        carry_h, carry_c = carry_over(dh, sm, t), carry_over(dc, sm, t)
        np.multiply(dh, dh_dc, out=tmp)
        dc += tmp
        np.multiply(local[0], dh, out=d[0])
        np.multiply(local[1:], dc, out=d[1:])
        if t >= first:                   # at t = 0: the initial states' gradients
            np.matmul(d, u4t, out=rec)
            if mh is not None:
                np.multiply(rec, mh, out=rec)
            np.add.reduce(rec, axis=0, out=d_next)
            dc *= forget
            if sm is not None:
                d_next += carry_h
                dc += carry_c
    return [d_next, dc]


class _LSTMCell:
    """The elementwise part of the LSTM steps on one gate buffer ``z`` = ``(4, B, n)``
    (gates o, i, f, c: the three recurrent-activation gates first, so that they are
    one contiguous ``z[:3]``), with its views made once. With ``steps`` (training) it
    keeps, per step, the local derivatives (``local``, gate-major ``(4, T, B, n)``),
    ``dh_dc`` (how h_t's grad reaches c_t) and the forget gate."""

    def __init__(self, activation, recurrent_activation, batch, n, dtype, steps=0):
        self.act, self.d_act = RECURRENT_ACTIVATIONS[activation]
        self.ract, self.d_ract = RECURRENT_ACTIVATIONS[recurrent_activation]
        # sigmoid(x) = tanh(x/2)/2 + 1/2 (the halving is folded into the weights); with
        # a tanh candidate all four gates are then one tanh call
        self.fast = recurrent_activation == "sigmoid"
        self.one_tanh = self.fast and activation == "tanh"
        # In the tanh form sigmoid'(x) = (1 - tanh(x/2)^2) / 4: the training forward
        # keeps 1 - tanh^2 (one pass over all four gates with a tanh candidate) and
        # the backward puts the 1/4 into the weights its grads meet.
        self.scale = 0.25 if self.fast else 1.0
        self.z = np.empty((4, batch, n), dtype)
        self.gates, self.z3 = tuple(self.z), self.z[:3]
        self.rec = np.empty((4, batch, n), dtype)
        self.tmp, self.act_c = np.empty((batch, n), dtype), np.empty((batch, n), dtype)
        self.train = steps > 0
        if self.train:
            self.local = WORKSPACE.take((4, steps, batch, n), dtype)
            self.local_at = list(self.local.transpose(1, 0, 2, 3))
            self.dh_dc = WORKSPACE.take((steps, batch, n), dtype)
            self.forget = WORKSPACE.take((steps, batch, n), dtype)

    def saved(self):
        """The arrays the backward reads (training)."""
        return self.local, self.dh_dc, self.forget

    def step(self, t, g_t, h_prev, u, c_prev, c_new, h_new):
        """One step: pre-activations ``g_t`` (+ ``h_prev @ u`` unless None), the new
        c and h written into ``c_new`` and ``h_new``."""
        z, tmp, act_c = self.z, self.tmp, self.act_c
        if h_prev is None:
            np.copyto(z, g_t)
        else:
            np.matmul(h_prev, u, out=self.rec)
            np.add(g_t, self.rec, out=z)
        d = self.local_at[t] if self.train else None
        self.activate(d)
        o, i, f, cand = self.gates
        np.multiply(f, c_prev, out=c_new)
        np.multiply(i, cand, out=tmp)
        c_new += tmp
        self.act(c_new, act_c)
        np.multiply(o, act_c, out=h_new)
        if d is not None:
            self.keep_local(t, d, c_prev)

    def activate(self, d):
        """Activations of ``z`` in place; with ``d`` (training) also their derivatives
        from the outputs, the sigmoid gates' ``scale`` times too large."""
        z, z3 = self.z, self.z3
        if self.one_tanh:
            np.tanh(z, out=z)
            if d is not None:
                _one_minus_square(z, d)
            to_sigmoid(z3)
            return
        if self.fast:
            np.tanh(z3, out=z3)
            if d is not None:
                _one_minus_square(z3, d[:3])
            to_sigmoid(z3)
        else:
            self.ract(z3, z3)
            if d is not None:
                derivative(self.d_ract, z3, d[:3])
        self.act(z[3], z[3])
        if d is not None:
            derivative(self.d_act, z[3], d[3])

    def keep_local(self, t, d, c_prev):
        """Complete the step's local derivatives ``d`` (from :meth:`activate`) with the
        factors the chain rule puts beside them; keep dh_dc and the forget gate."""
        o, i, f, cand = self.gates
        d[0] *= self.act_c
        d[1] *= cand
        d[2] *= c_prev
        d[3] *= i
        derivative(self.d_act, self.act_c, self.dh_dc[t])
        self.dh_dc[t] *= o
        np.copyto(self.forget[t], f)


def _one_minus_square(y, out):
    np.multiply(y, y, out=out)
    np.subtract(1, out, out=out)


# -- from packed states to layer outputs ------------------------------------------------------

def sequence_of(packed, steps: int) -> Variable:
    """The batch-major sequence ``(B, T, units)`` of the first ``steps`` packed rows."""
    packed = as_variable(packed)
    out = np.ascontiguousarray(packed.data[:steps].transpose(1, 0, 2))

    def backward(g):
        full = np.zeros_like(packed.data, dtype=g.dtype)
        full[:steps] = g.transpose(1, 0, 2)
        return (full,)
    return result(out, (packed,), backward)


def step_of(packed, index: int) -> Variable:
    """One packed row ``(B, units)``: a final hidden or cell state."""
    packed = as_variable(packed)

    def backward(g):
        full = np.zeros_like(packed.data, dtype=g.dtype)
        full[index] = g
        return (full,)
    return result(packed.data[index].copy(), (packed,), backward)


def reverse_time(a) -> Variable:
    """Flip axis 1 (time) of a ``(B, T, ...)`` sequence."""
    a = as_variable(a)
    return result(np.ascontiguousarray(a.data[:, ::-1]), (a,),
                  lambda g: (np.ascontiguousarray(g[:, ::-1]),))
