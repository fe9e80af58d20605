"""Fused recurrent ops: SimpleRNN, LSTM and GRU over a whole sequence, forward and
backward (BPTT) side by side.

Why fused: composing one tape op per gate per timestep costs hundreds of closures per
sequence. Here each layer is one op: the input projection of every timestep is a single
GEMM, each timestep costs one recurrent GEMM plus a handful of in-place elementwise
calls on preallocated ``(T, B, k*units)`` buffers, and the backward mirrors it: the
local derivatives are computed for all timesteps at once, the loop only carries the
recurrence, and the weight gradients are again one GEMM each.

Layout inside the ops is time-major ``(T, B, .)`` so that every timestep is a
contiguous block. Each op returns one *packed* Variable (time-major hidden states,
plus the final cell state for the LSTM); :func:`sequence_of` and :func:`step_of` turn
it into the layer's outputs, and their gradients flow back into the packed array.

Gate layouts follow Keras: LSTM ``[i, f, c, o]``, GRU ``[z, r, h]``. The initial
state is zeros. ``go_backwards`` processes the sequence from its end and the packed
states are in processing order (Keras returns the reversed sequence too).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..autodiff.engine import Variable, as_variable, result

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# -- activations: in place forward, derivative from the output ---------------------------
# Every recurrent activation must have a derivative expressible from its output alone,
# so the backward needs no pre-activations. (GELU and softmax do not qualify.)

def _tanh(x, out):
    np.tanh(x, out=out)


def _sigmoid(x, out):
    expit(x, out=out)


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

def _prepare(x, kernel, recurrent_kernel, bias, go_backwards):
    """Variables, the compute dtype, and the time-major input ``(T*B, F)``."""
    x, kernel, recurrent_kernel = (as_variable(v) for v in (x, kernel, recurrent_kernel))
    bias = None if bias is None else as_variable(bias)
    xd = x.data
    dtype = xd.dtype if np.issubdtype(xd.dtype, np.floating) else kernel.data.dtype
    if xd.ndim != 3:
        raise ValueError(f"recurrent op expects (batch, timesteps, features) input, "
                         f"got shape {xd.shape}")
    batch, steps, features = xd.shape
    if steps == 0:
        raise ValueError("recurrent op needs at least one timestep, got 0")
    if go_backwards:
        xd = xd[:, ::-1]
    xt = np.empty((steps, batch, features), dtype)
    np.copyto(xt, xd.transpose(1, 0, 2), casting="unsafe")
    xt = xt.reshape(steps * batch, features)
    w, u = (v.data.astype(dtype, copy=False) for v in (kernel, recurrent_kernel))
    b = None if bias is None else bias.data.astype(dtype, copy=False)
    parents = (x, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return parents, dtype, (batch, steps, features), xt, w, u, b


def _input_grad(x, d_pre, w, dims, go_backwards):
    """Gradient w.r.t. the ``(B, T, F)`` input from the time-major pre-activation grads."""
    batch, steps, features = dims
    dxt = (d_pre.reshape(steps * batch, -1) @ w.T).reshape(steps, batch, features)
    dx = dxt.transpose(1, 0, 2)
    if go_backwards:
        dx = dx[:, ::-1]
    return np.ascontiguousarray(dx, dtype=x.data.dtype) \
        if np.issubdtype(x.data.dtype, np.floating) else None


def _cast(grad, var):
    return None if grad is None else grad.astype(var.data.dtype, copy=False)


# -- SimpleRNN ------------------------------------------------------------------------------

def simple_rnn(x, kernel, recurrent_kernel, bias=None, activation="tanh",
               go_backwards=False) -> Variable:
    """``h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Returns the packed hidden states, time-major ``(T, B, units)`` in processing order.
    """
    parents, dtype, dims, xt, w, u, b = _prepare(x, kernel, recurrent_kernel, bias,
                                                 go_backwards)
    x, kernel, recurrent_kernel = parents[:3]
    batch, steps, _ = dims
    units = u.shape[0]
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    pre = np.empty((steps, batch, units), dtype)
    np.matmul(xt, w, out=pre.reshape(steps * batch, units))
    if b is not None:
        pre += b
    hs = np.empty((steps + 1, batch, units), dtype)   # hs[0] is the zero initial state
    hs[0] = 0
    rec = np.empty((batch, units), dtype)
    for t in range(steps):
        if t:
            np.matmul(hs[t], u, out=rec)
            pre[t] += rec
        act(pre[t], hs[t + 1])

    def backward(g):
        g = g.astype(dtype, copy=False)
        local = d_act(hs[1:])
        d_pre = pre                      # the pre-activations are no longer needed
        d_next = np.zeros((batch, units), dtype)
        dh = np.empty((batch, units), dtype)
        ut = np.ascontiguousarray(u.T)
        for t in range(steps - 1, -1, -1):
            np.add(g[t], d_next, out=dh)
            np.multiply(dh, local[t], out=d_pre[t])
            if t:
                np.matmul(d_pre[t], ut, out=d_next)
        flat = d_pre.reshape(steps * batch, units)
        grads = [
            _input_grad(x, d_pre, w, dims, go_backwards) if x.requires_grad else None,
            _cast(xt.T @ flat, kernel) if kernel.requires_grad else None,
            _cast(hs[1:steps].reshape(-1, units).T @ flat[batch:], recurrent_kernel)
            if recurrent_kernel.requires_grad else None,
        ]
        if b is not None:
            grads.append(_cast(flat.sum(0), parents[3]) if parents[3].requires_grad else None)
        return tuple(grads)

    return result(hs[1:], parents, backward)


# -- LSTM -----------------------------------------------------------------------------------

def lstm(x, kernel, recurrent_kernel, bias=None, activation="tanh",
         recurrent_activation="sigmoid", go_backwards=False) -> Variable:
    """Keras' LSTM cell over a sequence, gate order ``[i, f, c, o]``::

        i, f, o = rec_act(.)   c~ = act(.)   c_t = f c_{t-1} + i c~   h_t = o act(c_t)

    Returns the packed states ``(T + 1, B, units)``: ``h_1 .. h_T`` then ``c_T``.
    """
    parents, dtype, dims, xt, w, u, b = _prepare(x, kernel, recurrent_kernel, bias,
                                                 go_backwards)
    x, kernel, recurrent_kernel = parents[:3]
    batch, steps, _ = dims
    n = u.shape[0]
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    ract, d_ract = RECURRENT_ACTIVATIONS[recurrent_activation]

    gates = np.empty((steps, batch, 4 * n), dtype)   # pre-activations, then activations
    np.matmul(xt, w, out=gates.reshape(steps * batch, 4 * n))
    if b is not None:
        gates += b
    hs = np.empty((steps + 2, batch, n), dtype)      # h_0 = 0, h_1..h_T, then c_T
    hs[0] = 0
    cs = np.empty((steps + 1, batch, n), dtype)      # c_0 = 0, c_1..c_T
    cs[0] = 0
    act_c = np.empty((steps, batch, n), dtype)       # act(c_t)
    rec = np.empty((batch, 4 * n), dtype)
    tmp = np.empty((batch, n), dtype)
    for t in range(steps):
        z = gates[t]
        if t:
            np.matmul(hs[t], u, out=rec)
            z += rec
        ract(z[:, :2 * n], z[:, :2 * n])
        act(z[:, 2 * n:3 * n], z[:, 2 * n:3 * n])
        ract(z[:, 3 * n:], z[:, 3 * n:])
        np.multiply(z[:, n:2 * n], cs[t], out=cs[t + 1])
        np.multiply(z[:, :n], z[:, 2 * n:3 * n], out=tmp)
        cs[t + 1] += tmp
        act(cs[t + 1], act_c[t])
        np.multiply(z[:, 3 * n:], act_c[t], out=hs[t + 1])
    hs[steps + 1] = cs[steps]

    def backward(g):
        g = g.astype(dtype, copy=False)
        gi, gf, gc, go = (gates[..., k * n:(k + 1) * n] for k in range(4))
        # Local derivatives of every timestep at once: d(pre-activation) = factor * dc
        # for i, f, c~ and factor * dh for o; dc_t also gets dh_t * o * act'(c_t).
        local = np.empty((steps, batch, 4 * n), dtype)
        local[..., :n] = gc * d_ract(gi)
        local[..., n:2 * n] = cs[:steps] * d_ract(gf)
        local[..., 2 * n:3 * n] = gi * d_act(gc)
        local[..., 3 * n:] = act_c * d_ract(go)
        dh_to_dc = go * d_act(act_c)
        d_pre = np.empty((steps, batch, 4 * n), dtype)
        dh = np.empty((batch, n), dtype)
        dc = g[steps].copy()
        d_next = np.zeros((batch, n), dtype)
        ut = np.ascontiguousarray(u.T)
        for t in range(steps - 1, -1, -1):
            np.add(g[t], d_next, out=dh)
            np.multiply(dh, dh_to_dc[t], out=tmp)
            dc += tmp
            np.multiply(local[t].reshape(batch, 4, n)[:, :3], dc[:, None, :],
                        out=d_pre[t].reshape(batch, 4, n)[:, :3])
            np.multiply(local[t, :, 3 * n:], dh, out=d_pre[t, :, 3 * n:])
            if t:
                np.matmul(d_pre[t], ut, out=d_next)
                dc *= gf[t]
        flat = d_pre.reshape(steps * batch, 4 * n)
        grads = [
            _input_grad(x, d_pre, w, dims, go_backwards) if x.requires_grad else None,
            _cast(xt.T @ flat, kernel) if kernel.requires_grad else None,
            _cast(hs[1:steps].reshape(-1, n).T @ flat[batch:], recurrent_kernel)
            if recurrent_kernel.requires_grad else None,
        ]
        if b is not None:
            grads.append(_cast(flat.sum(0), parents[3]) if parents[3].requires_grad else None)
        return tuple(grads)

    return result(hs[1:], parents, backward)


# -- GRU ------------------------------------------------------------------------------------

def gru(x, kernel, recurrent_kernel, bias=None, activation="tanh",
        recurrent_activation="sigmoid", go_backwards=False, reset_after=True) -> Variable:
    """Keras' GRU over a sequence, gate order ``[z, r, h]``::

        z, r = rec_act(x W + b_in + h U + b_rec)                       (both variants)
        h~ = act(x W_h + b_in_h + r * (h U_h + b_rec_h))               reset_after=True
        h~ = act(x W_h + b_h + (r * h) U_h)                            reset_after=False
        h_t = z * h_{t-1} + (1 - z) * h~

    ``bias`` is ``(2, 3u)`` (input and recurrent bias) with ``reset_after``, else
    ``(3u,)``. Returns the packed hidden states ``(T, B, units)``.
    """
    parents, dtype, dims, xt, w, u, b = _prepare(x, kernel, recurrent_kernel, bias,
                                                 go_backwards)
    x, kernel, recurrent_kernel = parents[:3]
    batch, steps, _ = dims
    n = u.shape[0]
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    ract, d_ract = RECURRENT_ACTIVATIONS[recurrent_activation]

    gates = np.empty((steps, batch, 3 * n), dtype)
    np.matmul(xt, w, out=gates.reshape(steps * batch, 3 * n))
    b_rec_h = None
    if b is not None:
        if reset_after:
            gates += b[0]
            gates[..., :2 * n] += b[1, :2 * n]
            b_rec_h = b[1, 2 * n:]
        else:
            gates += b
    hs = np.empty((steps + 1, batch, n), dtype)
    hs[0] = 0
    # reset_after: the recurrent candidate term h U_h + b_rec_h; else r * h_{t-1}
    held = np.empty((steps, batch, n), dtype)
    tmp = np.empty((batch, n), dtype)
    if reset_after:
        rec = np.empty((batch, 3 * n), dtype)
    else:
        u_zr, u_h = np.ascontiguousarray(u[:, :2 * n]), np.ascontiguousarray(u[:, 2 * n:])
        rec = np.empty((batch, 2 * n), dtype)
    for t in range(steps):
        z = gates[t]
        if reset_after:
            if t:
                np.matmul(hs[t], u, out=rec)
                z[:, :2 * n] += rec[:, :2 * n]
                if b_rec_h is not None:
                    np.add(rec[:, 2 * n:], b_rec_h, out=held[t])
                else:
                    held[t] = rec[:, 2 * n:]
            else:
                held[0] = 0 if b_rec_h is None else b_rec_h
            ract(z[:, :2 * n], z[:, :2 * n])
            np.multiply(z[:, n:2 * n], held[t], out=tmp)
            z[:, 2 * n:] += tmp
        else:
            if t:
                np.matmul(hs[t], u_zr, out=rec)
                z[:, :2 * n] += rec
            ract(z[:, :2 * n], z[:, :2 * n])
            if t:
                np.multiply(z[:, n:2 * n], hs[t], out=held[t])
                np.matmul(held[t], u_h, out=tmp)
                z[:, 2 * n:] += tmp
            else:
                held[0] = 0
        cand = z[:, 2 * n:]
        act(cand, cand)
        np.subtract(hs[t], cand, out=tmp)
        tmp *= z[:, :n]
        np.add(cand, tmp, out=hs[t + 1])

    def backward(g):
        g = g.astype(dtype, copy=False)
        gz, gr, gh = (gates[..., k * n:(k + 1) * n] for k in range(3))
        h_prev = hs[:steps]
        a_z = (h_prev - gh) * d_ract(gz)
        a_h = (1 - gz) * d_act(gh)
        a_r = (held if reset_after else h_prev) * d_ract(gr)
        d_x = np.empty((steps, batch, 3 * n), dtype)   # grads of the input projections
        d_next = np.zeros((batch, n), dtype)
        dh = np.empty((batch, n), dtype)
        ut = np.ascontiguousarray(u.T)
        if reset_after:
            d_rec = np.empty((steps, batch, 3 * n), dtype)  # grads of h U + b_rec
            for t in range(steps - 1, -1, -1):
                np.add(g[t], d_next, out=dh)
                dhh = d_x[t, :, 2 * n:]
                np.multiply(dh, a_h[t], out=dhh)
                np.multiply(dh, a_z[t], out=d_rec[t, :, :n])
                np.multiply(dhh, a_r[t], out=d_rec[t, :, n:2 * n])
                np.multiply(dhh, gr[t], out=d_rec[t, :, 2 * n:])
                if t:
                    np.matmul(d_rec[t], ut, out=d_next)
                    np.multiply(dh, gz[t], out=tmp)
                    d_next += tmp
            d_x[..., :2 * n] = d_rec[..., :2 * n]
        else:
            u_zr_t, u_h_t = np.ascontiguousarray(ut[:2 * n]), np.ascontiguousarray(ut[2 * n:])
            d_held = np.empty((batch, n), dtype)
            for t in range(steps - 1, -1, -1):
                np.add(g[t], d_next, out=dh)
                dhh = d_x[t, :, 2 * n:]
                np.multiply(dh, a_h[t], out=dhh)
                np.multiply(dh, a_z[t], out=d_x[t, :, :n])
                if t:
                    np.matmul(dhh, u_h_t, out=d_held)
                    np.multiply(d_held, a_r[t], out=d_x[t, :, n:2 * n])
                    np.matmul(d_x[t, :, :2 * n], u_zr_t, out=d_next)
                    np.multiply(d_held, gr[t], out=tmp)
                    d_next += tmp
                    np.multiply(dh, gz[t], out=tmp)
                    d_next += tmp
                else:
                    d_x[0, :, n:2 * n] = 0
            d_rec = d_x
        flat = d_x.reshape(steps * batch, 3 * n)
        grads = [
            _input_grad(x, d_x, w, dims, go_backwards) if x.requires_grad else None,
            _cast(xt.T @ flat, kernel) if kernel.requires_grad else None,
        ]
        if recurrent_kernel.requires_grad:
            h_in = hs[1:steps].reshape(-1, n)
            if reset_after:
                du = h_in.T @ d_rec[1:].reshape(-1, 3 * n)
            else:
                du = np.empty((n, 3 * n), dtype)
                du[:, :2 * n] = h_in.T @ d_x[1:, :, :2 * n].reshape(-1, 2 * n)
                du[:, 2 * n:] = held[1:].reshape(-1, n).T @ d_x[1:, :, 2 * n:].reshape(-1, n)
            grads.append(_cast(du, recurrent_kernel))
        else:
            grads.append(None)
        if b is not None:
            if not parents[3].requires_grad:
                grads.append(None)
            elif reset_after:
                grads.append(_cast(np.stack([flat.sum(0), d_rec.reshape(-1, 3 * n).sum(0)]),
                                   parents[3]))
            else:
                grads.append(_cast(flat.sum(0), parents[3]))
        return tuple(grads)

    return result(hs[1:], parents, backward)


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
