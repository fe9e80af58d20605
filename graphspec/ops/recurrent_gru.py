"""The fused GRU op (Keras 3 semantics), forward and BPTT backward side by side; the
conventions (packed result, step mask, initial state, dropout masks) are those of
``recurrent.py``, the shared plumbing is ``recurrent_base.py``."""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, result
from .recurrent_base import (RECURRENT_ACTIVATIONS, carry_over, derivative, gate_major,
                             hold_masked, initial_states, input_grad, input_weights,
                             internal_masks, keras_layout, masked_inputs, masked_states,
                             pack, prepare, sigmoid_scaled, state_grads, step_mask_of,
                             to_sigmoid, unpack, wants_grad, weight_grads)

GRU_ORDER = (0, 1, 2)       # z, r, h as in Keras


def gru(x, kernel, recurrent_kernel, bias=None, activation="tanh",
        recurrent_activation="sigmoid", go_backwards=False, reset_after=True,
        input_mask=None, recurrent_mask=None, step_mask=None, initial_state=None,
        zero_output=False) -> Variable:
    """Keras' GRU over a sequence, gate order ``[z, r, h]``::

        z, r = rec_act(x W + b_in + h U + b_rec)                       (both variants)
        h~ = act(x W_h + b_in_h + r * (h U_h + b_rec_h))               reset_after=True
        h~ = act(x W_h + b_h + (r * h) U_h)                            reset_after=False
        h_t = z * h_{t-1} + (1 - z) * h~

    ``bias`` is ``(2, 3u)`` (input and recurrent bias) with ``reset_after``, else
    ``(3u,)``. Returns the packed ``(T + 1, B, units)``: the outputs, then the final h.
    """
    (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
     n, w, u, b) = prepare(x, kernel, recurrent_kernel, bias, go_backwards)
    batch, steps, _ = dims
    order = GRU_ORDER
    mx, mh = internal_masks(input_mask, recurrent_mask, order, dtype)
    sm = step_mask_of(step_mask, dims, go_backwards, dtype, zero_output)
    (h0,), zero_start, starts = initial_states(initial_state, 1, batch, n, dtype)
    first = 1 if zero_start else 0       # a zero state needs no recurrent product
    grad_start = wants_grad(starts)
    xm = masked_inputs(xa, mx, dims)
    # the candidate's recurrent mask (reset_after=False multiplies it into r * h)
    mh_h = None if mh is None else mh[-1]
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    ract, d_ract = RECURRENT_ACTIVATIONS[recurrent_activation]
    b_rec_h = None
    if b is not None and reset_after:
        # the recurrent bias of z and r adds straight to the input bias; only the
        # candidate's recurrent bias sits inside r * (h U_h + b_rec_h)
        b_in = b[0].copy()
        b_in[:2 * n] += b[1, :2 * n]
        b_rec_h = b[1, 2 * n:]
        wa = input_weights(w, b_in, order, n, dtype)
    else:
        wa = input_weights(w, b, order, n, dtype)
    u3 = gate_major(u, order, n)                    # (3, n, n)
    fast = recurrent_activation == "sigmoid"
    wa_f = sigmoid_scaled(wa, (0, 1), 3) if fast else wa
    u3_f = sigmoid_scaled(u3, (0, 1), 3) if fast else u3
    if not reset_after:
        u_zr_f, u_h = np.ascontiguousarray(u3_f[:2]), u3[2]

    gates = np.matmul(xm, wa_f).reshape(3, steps, batch, n)
    hs = np.empty((steps + 1, batch, n), dtype)
    hs[0] = h0
    # reset_after: the candidate's recurrent term h U_h + b_rec_h; else r * h_{t-1}
    held = np.empty((steps, batch, n), dtype)
    rec = np.empty((3 if reset_after else 2, batch, n), dtype)
    tmp = np.empty((batch, n), dtype)
    for t in range(steps):
        z = gates[:, t]
        if t >= first:
            h_in = hs[t] if mh is None else hs[t] * mh
            if reset_after:
                np.matmul(h_in, u3_f, out=rec)
                z[:2] += rec[:2]
                if b_rec_h is None:
                    held[t] = rec[2]
                else:
                    np.add(rec[2], b_rec_h, out=held[t])
            else:
                np.matmul(h_in if mh is None or len(mh) == 1 else h_in[:2], u_zr_f, out=rec)
                z[:2] += rec
        if fast:
            np.tanh(z[:2], out=z[:2])
            to_sigmoid(z[:2])
        else:
            ract(z[:2], z[:2])
        upd, reset, cand = z
        if t < first:
            held[0] = 0 if b_rec_h is None else b_rec_h
        elif not reset_after:
            np.multiply(reset, hs[t], out=held[t])
            if mh_h is not None:
                held[t] *= mh_h
            np.matmul(held[t], u_h, out=tmp)
            cand += tmp
        if reset_after:
            np.multiply(reset, held[t], out=tmp)
            cand += tmp
        act(cand, cand)
        np.subtract(hs[t], cand, out=tmp)
        tmp *= upd
        np.add(cand, tmp, out=hs[t + 1])
        hold_masked((hs,), t, sm)

    def backward(g):
        gh, _ = unpack(g.astype(dtype, copy=False), steps, sm)
        gz, gr, gh_cand = gates
        h_prev = hs[:steps]
        scratch = np.empty_like(gz)
        a_z = np.subtract(h_prev, gh_cand)
        a_z *= derivative(d_ract, gz, scratch)
        a_h = np.subtract(1, gz)
        a_h *= derivative(d_act, gh_cand, scratch)
        a_r = derivative(d_ract, gr, scratch)
        a_r *= held if reset_after else (h_prev if mh_h is None else h_prev * mh_h)
        # d_in: grads of the input projections (z, r, candidate) of every step;
        # with reset_after, d_rec are the grads of h U + b_rec (z and r blocks equal)
        d_in = np.empty((3, steps, batch, n), dtype)
        d_next = np.zeros((batch, n), dtype)
        dh = np.empty((batch, n), dtype)
        u3t = np.ascontiguousarray(u3.transpose(0, 2, 1))
        if reset_after:
            d_rec = np.empty((3, steps, batch, n), dtype)
            for t in range(steps - 1, -1, -1):
                np.add(gh[t], d_next, out=dh)
                carry = carry_over(dh, sm, t)
                dhh = d_in[2, t]
                np.multiply(dh, a_h[t], out=dhh)
                np.multiply(dh, a_z[t], out=d_rec[0, t])
                np.multiply(dhh, a_r[t], out=d_rec[1, t])
                np.multiply(dhh, gr[t], out=d_rec[2, t])
                if t or grad_start:      # at t = 0: the initial state's gradient
                    np.matmul(d_rec[:, t], u3t, out=rec)
                    if mh is not None:
                        np.multiply(rec, mh, out=rec)
                    np.add.reduce(rec, axis=0, out=d_next)
                    np.multiply(dh, gz[t], out=tmp)
                    d_next += tmp
                    if carry is not None:
                        d_next += carry
            d_in[:2] = d_rec[:2]
        else:
            u_zr_t, u_h_t = np.ascontiguousarray(u3t[:2]), u3t[2]
            d_held = np.empty((batch, n), dtype)
            for t in range(steps - 1, -1, -1):
                np.add(gh[t], d_next, out=dh)
                carry = carry_over(dh, sm, t)
                dhh = d_in[2, t]
                np.multiply(dh, a_h[t], out=dhh)
                np.multiply(dh, a_z[t], out=d_in[0, t])
                # (a_r is 0 at a zero first state: r acts on nothing there)
                np.matmul(dhh, u_h_t, out=d_held)
                np.multiply(d_held, a_r[t], out=d_in[1, t])
                if t or grad_start:      # at t = 0: the initial state's gradient
                    np.matmul(d_in[:2, t], u_zr_t, out=rec)
                    if mh is not None:
                        np.multiply(rec, mh[:2], out=rec)
                    np.add.reduce(rec, axis=0, out=d_next)
                    np.multiply(d_held, gr[t], out=tmp)
                    if mh_h is not None:
                        np.multiply(tmp, mh_h, out=tmp)
                    d_next += tmp
                    np.multiply(dh, gz[t], out=tmp)
                    d_next += tmp
                    if carry is not None:
                        d_next += carry
            d_rec = None
        flat = d_in.reshape(3, steps * batch, n)
        d_wa = np.matmul(xm.transpose(0, 2, 1), flat)
        h_in = masked_states(hs[first:steps], mh).transpose(0, 2, 1)
        if reset_after:
            d_u = np.matmul(h_in, d_rec[:, first:].reshape(3, -1, n))
        else:
            d_u = np.empty((3, n, n), dtype)
            np.matmul(h_in[:2], d_in[:2, first:].reshape(2, -1, n), out=d_u[:2])
            np.matmul(held[first:].reshape(-1, n).T, d_in[2, first:].reshape(-1, n),
                      out=d_u[2])

        def bias_grad():
            d_b_in = keras_layout(d_wa[:, -1], order, n)
            if not reset_after:
                return d_b_in
            return np.stack([d_b_in, keras_layout(d_rec.sum(axis=(1, 2)), order, n)])
        return tuple([input_grad(x, flat, wa, dims, go_backwards, mx)]
                     + weight_grads(parents, d_wa, d_u, order, n, bias_grad)
                     + state_grads(starts, [d_next]))

    return result(pack(hs[1:], [hs[steps]], sm), parents + tuple(starts), backward)
