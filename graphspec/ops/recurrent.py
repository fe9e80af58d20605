"""Fused recurrent ops: SimpleRNN, LSTM and GRU over a whole sequence, forward and
backward (BPTT) side by side.

Why fused: composing one tape op per gate per timestep costs hundreds of closures per
sequence. Here each layer is one op: the input projection of every timestep is one
GEMM, each timestep costs one recurrent (batched) matmul plus a handful of in-place
elementwise calls on preallocated buffers, and the backward mirrors it: the local
derivatives of all timesteps are computed at once, the loop only carries the
recurrence, and the weight gradients are again one GEMM per gate.

Each op returns one *packed* Variable (time-major hidden states ``(T, B, units)``, plus
the final cell state for the LSTM); :func:`sequence_of` and :func:`step_of` turn it
into the layer's outputs, and their gradients flow back into the packed array.

Weights and biases use Keras' layouts (LSTM gates ``[i, f, c, o]``, GRU ``[z, r, h]``).
The initial state is zeros. ``go_backwards`` processes the sequence from its end and the
packed states are in processing order (Keras returns the reversed sequence too).

Dropout (training only, Keras 3's ``DropoutRNNCell``): ``input_mask`` ``(G, B, F)`` and
``recurrent_mask`` ``(G, B, units)`` multiply the input ``x_t`` and the previous state
``h_{t-1}`` before their products with the kernels, the same masks at every timestep.
``G`` is 1 (one mask shared by every gate) or the number of gates, in Keras' gate order
(one mask per gate, Keras' ``implementation=1``). The state carried on (and the
``z * h_{t-1}`` of the GRU) is the unmasked one, as in Keras.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result

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


def _prepare(x, kernel, recurrent_kernel, bias, go_backwards):
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


def _internal_masks(input_mask, recurrent_mask, order, dtype):
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


def _masked_inputs(xa, mx, dims):
    """The ``(T*B, F+1)`` input rows with the dropout masks applied: ``(G or 1, T*B, F+1)``
    (the bias column of ones stays unmasked)."""
    batch, steps, features = dims
    if mx is None:
        return xa[None]
    ma = np.ones((len(mx), batch, features + 1), xa.dtype)
    ma[..., :features] = mx
    return (xa.reshape(1, steps, batch, features + 1) * ma[:, None]).reshape(
        len(mx), steps * batch, features + 1)


def _masked_states(hs, mh):
    """Previous states ``(T-1, B, n)`` as the recurrent products see them:
    ``(G or 1, (T-1)*B, n)``, masked by the recurrent dropout masks."""
    n = hs.shape[-1]
    if mh is None:
        return hs.reshape(1, -1, n)
    return (hs[None] * mh[:, None]).reshape(len(mh), -1, n)


def _gate_major(mat, order, n):
    """``(rows, G*n)`` Keras blocks -> ``(G, rows, n)`` in the internal gate ``order``."""
    return np.stack([mat[..., k * n:(k + 1) * n] for k in order])


def _keras_layout(d, order, n):
    """Inverse of :func:`_gate_major`: ``(G, rows, n)`` -> ``(rows, G*n)``."""
    out = np.empty(d.shape[1:-1] + (len(order) * n,), d.dtype)
    for pos, k in enumerate(order):
        out[..., k * n:(k + 1) * n] = d[pos]
    return out


def _input_weights(w, b, order, n, dtype):
    """``(G, F+1, n)``: the kernel blocks with the input bias as an extra row."""
    wa = np.zeros((len(order), w.shape[0] + 1, n), dtype)
    wa[:, :-1] = _gate_major(w, order, n)
    if b is not None:
        wa[:, -1] = _gate_major(b, order, n)
    return wa


def _input_grad(x, blocks, wa, dims, go_backwards, mask=None):
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


def _weight_grads(parents, d_wa, d_u, order, n, bias_of):
    """Kernel, recurrent kernel and bias gradients in Keras' layout."""
    _, kernel, recurrent_kernel = parents[:3]
    grads = [_cast(_keras_layout(d_wa[:, :-1], order, n), kernel)
             if kernel.requires_grad else None,
             _cast(_keras_layout(d_u, order, n), recurrent_kernel)
             if recurrent_kernel.requires_grad else None]
    if len(parents) > 3:
        grads.append(_cast(bias_of(), parents[3]) if parents[3].requires_grad else None)
    return grads


def _derivative(d_fn, y, out):
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


def _to_sigmoid(v):
    """``tanh(x / 2)`` -> ``sigmoid(x)``, in place (the halving is folded into weights)."""
    v *= 0.5
    v += 0.5


def _sigmoid_scaled(weights, rows, gates):
    """Copy of gate-major ``weights`` with the ``rows`` gates halved (exact in binary)."""
    scale = np.ones(gates, weights.dtype)
    scale[list(rows)] = 0.5
    return weights * scale.reshape((gates,) + (1,) * (weights.ndim - 1))


# -- SimpleRNN ------------------------------------------------------------------------------

def simple_rnn(x, kernel, recurrent_kernel, bias=None, activation="tanh",
               go_backwards=False, input_mask=None, recurrent_mask=None) -> Variable:
    """``h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Returns the packed hidden states, time-major ``(T, B, units)`` in processing order.
    """
    (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
     n, w, u, b) = _prepare(x, kernel, recurrent_kernel, bias, go_backwards)
    batch, steps, _ = dims
    order = (0,)
    mx, mh = _internal_masks(input_mask, recurrent_mask, order, dtype)
    xm = _masked_inputs(xa, mx, dims)
    wa = _input_weights(w, b, order, n, dtype)
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    pre = (xm[0] @ wa[0]).reshape(steps, batch, n)
    hs = np.empty((steps + 1, batch, n), dtype)   # hs[0] is the zero initial state
    hs[0] = 0
    rec = np.empty((batch, n), dtype)
    for t in range(steps):
        if t:
            np.matmul(hs[t] if mh is None else hs[t] * mh[0], u, out=rec)
            pre[t] += rec
        act(pre[t], hs[t + 1])

    def backward(g):
        g = g.astype(dtype, copy=False)
        d_pre = d_act(hs[1:])            # local derivatives, then pre-activation grads
        d_next = np.zeros((batch, n), dtype)
        ut = np.ascontiguousarray(u.T)
        for t in range(steps - 1, -1, -1):
            np.add(g[t], d_next, out=d_next)
            np.multiply(d_pre[t], d_next, out=d_pre[t])
            if t:
                np.matmul(d_pre[t], ut, out=d_next)
                if mh is not None:
                    d_next *= mh[0]
        flat = d_pre.reshape(steps * batch, n)
        d_wa = (xm[0].T @ flat)[None]
        d_u = (_masked_states(hs[1:steps], mh)[0].T @ flat[batch:])[None]
        return tuple([_input_grad(x, d_pre[None], wa, dims, go_backwards, mx)]
                     + _weight_grads(parents, d_wa, d_u, order, n, lambda: d_wa[0, -1]))

    return result(hs[1:], parents, backward)


# -- LSTM -----------------------------------------------------------------------------------

LSTM_ORDER = (3, 0, 1, 2)   # internal gates o, i, f, c (Keras blocks are i, f, c, o)


def lstm(x, kernel, recurrent_kernel, bias=None, activation="tanh",
         recurrent_activation="sigmoid", go_backwards=False, input_mask=None,
         recurrent_mask=None) -> Variable:
    """Keras' LSTM cell over a sequence, gate order ``[i, f, c, o]``::

        i, f, o = rec_act(.)   c~ = act(.)   c_t = f c_{t-1} + i c~   h_t = o act(c_t)

    Returns the packed states ``(T + 1, B, units)``: ``h_1 .. h_T`` then ``c_T``.
    """
    (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
     n, w, u, b) = _prepare(x, kernel, recurrent_kernel, bias, go_backwards)
    batch, steps, _ = dims
    order = LSTM_ORDER
    mx, mh = _internal_masks(input_mask, recurrent_mask, order, dtype)
    xm = _masked_inputs(xa, mx, dims)
    act, d_act = RECURRENT_ACTIVATIONS[activation]
    ract, d_ract = RECURRENT_ACTIVATIONS[recurrent_activation]
    wa = _input_weights(w, b, order, n, dtype)       # (4, F+1, n)
    u4 = _gate_major(u, order, n)                    # (4, n, n)
    fast = recurrent_activation == "sigmoid"         # sigmoid(x) = tanh(x/2)/2 + 1/2
    one_tanh = fast and activation == "tanh"         # then all four gates are one tanh
    wa_f = _sigmoid_scaled(wa, (0, 1, 2), 4) if fast else wa
    u4_f = _sigmoid_scaled(u4, (0, 1, 2), 4) if fast else u4

    gates = np.matmul(xm, wa_f).reshape(4, steps, batch, n)   # pre-acts, then acts
    hs = np.empty((steps + 2, batch, n), dtype)      # h_0 = 0, h_1..h_T, then c_T
    hs[0] = 0
    cs = np.empty((steps + 1, batch, n), dtype)      # c_0 = 0, c_1..c_T
    cs[0] = 0
    act_c = np.empty((steps, batch, n), dtype)       # act(c_t)
    rec = np.empty((4, batch, n), dtype)
    tmp = np.empty((batch, n), dtype)
    for t in range(steps):
        z = gates[:, t]
        if t:
            np.matmul(hs[t] if mh is None else hs[t] * mh, u4_f, out=rec)
            z += rec
        if one_tanh:
            np.tanh(z, out=z)
            _to_sigmoid(z[:3])
        else:
            if fast:
                np.tanh(z[:3], out=z[:3])
                _to_sigmoid(z[:3])
            else:
                ract(z[:3], z[:3])
            act(z[3], z[3])
        o, i, f, cand = z
        np.multiply(f, cs[t], out=cs[t + 1])
        np.multiply(i, cand, out=tmp)
        cs[t + 1] += tmp
        act(cs[t + 1], act_c[t])
        np.multiply(o, act_c[t], out=hs[t + 1])
    hs[steps + 1] = cs[steps]

    def backward(g):
        g = g.astype(dtype, copy=False)
        go, gi, gf, gc = gates
        # Local derivatives of all timesteps at once; the loop turns them in place into
        # the pre-activation grads: d_o = local_o * dh, d_{i,f,c} = local_{i,f,c} * dc.
        d = np.empty((4, steps, batch, n), dtype)
        _derivative(d_ract, gates[:3], d[:3])
        d[0] *= act_c
        d[1] *= gc
        d[2] *= cs[:steps]
        _derivative(d_act, gc, d[3])
        d[3] *= gi
        dh_to_dc = _derivative(d_act, act_c, np.empty_like(act_c))
        dh_to_dc *= go
        dh = np.empty((batch, n), dtype)
        dc = g[steps].copy()
        d_next = np.zeros((batch, n), dtype)
        u4t = np.ascontiguousarray(u4.transpose(0, 2, 1))
        for t in range(steps - 1, -1, -1):
            np.add(g[t], d_next, out=dh)
            np.multiply(dh, dh_to_dc[t], out=tmp)
            dc += tmp
            dt = d[:, t]
            np.multiply(dt[0], dh, out=dt[0])
            np.multiply(dt[1:], dc, out=dt[1:])
            if t:
                np.matmul(dt, u4t, out=rec)
                if mh is not None:
                    np.multiply(rec, mh, out=rec)
                np.add.reduce(rec, axis=0, out=d_next)
                dc *= gf[t]
        flat = d.reshape(4, steps * batch, n)
        d_wa = np.matmul(xm.transpose(0, 2, 1), flat)
        d_u = np.matmul(_masked_states(hs[1:steps], mh).transpose(0, 2, 1), flat[:, batch:])
        return tuple([_input_grad(x, flat, wa, dims, go_backwards, mx)]
                     + _weight_grads(parents, d_wa, d_u, order, n,
                                     lambda: _keras_layout(d_wa[:, -1], order, n)))

    return result(hs[1:], parents, backward)


# -- GRU ------------------------------------------------------------------------------------

GRU_ORDER = (0, 1, 2)       # z, r, h as in Keras


def gru(x, kernel, recurrent_kernel, bias=None, activation="tanh",
        recurrent_activation="sigmoid", go_backwards=False, reset_after=True,
        input_mask=None, recurrent_mask=None) -> Variable:
    """Keras' GRU over a sequence, gate order ``[z, r, h]``::

        z, r = rec_act(x W + b_in + h U + b_rec)                       (both variants)
        h~ = act(x W_h + b_in_h + r * (h U_h + b_rec_h))               reset_after=True
        h~ = act(x W_h + b_h + (r * h) U_h)                            reset_after=False
        h_t = z * h_{t-1} + (1 - z) * h~

    ``bias`` is ``(2, 3u)`` (input and recurrent bias) with ``reset_after``, else
    ``(3u,)``. Returns the packed hidden states ``(T, B, units)``.
    """
    (x, kernel, recurrent_kernel, bias, parents, dtype, dims, xa,
     n, w, u, b) = _prepare(x, kernel, recurrent_kernel, bias, go_backwards)
    batch, steps, _ = dims
    order = GRU_ORDER
    mx, mh = _internal_masks(input_mask, recurrent_mask, order, dtype)
    xm = _masked_inputs(xa, mx, dims)
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
        wa = _input_weights(w, b_in, order, n, dtype)
    else:
        wa = _input_weights(w, b, order, n, dtype)
    u3 = _gate_major(u, order, n)                    # (3, n, n)
    fast = recurrent_activation == "sigmoid"
    wa_f = _sigmoid_scaled(wa, (0, 1), 3) if fast else wa
    u3_f = _sigmoid_scaled(u3, (0, 1), 3) if fast else u3
    if not reset_after:
        u_zr_f, u_h = np.ascontiguousarray(u3_f[:2]), u3[2]

    gates = np.matmul(xm, wa_f).reshape(3, steps, batch, n)
    hs = np.empty((steps + 1, batch, n), dtype)
    hs[0] = 0
    # reset_after: the candidate's recurrent term h U_h + b_rec_h; else r * h_{t-1}
    held = np.empty((steps, batch, n), dtype)
    rec = np.empty((3 if reset_after else 2, batch, n), dtype)
    tmp = np.empty((batch, n), dtype)
    for t in range(steps):
        z = gates[:, t]
        if t:
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
            _to_sigmoid(z[:2])
        else:
            ract(z[:2], z[:2])
        upd, reset, cand = z
        if not t:
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

    def backward(g):
        g = g.astype(dtype, copy=False)
        gz, gr, gh = gates
        h_prev = hs[:steps]
        scratch = np.empty_like(gz)
        a_z = np.subtract(h_prev, gh)
        a_z *= _derivative(d_ract, gz, scratch)
        a_h = np.subtract(1, gz)
        a_h *= _derivative(d_act, gh, scratch)
        a_r = _derivative(d_ract, gr, scratch)
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
                np.add(g[t], d_next, out=dh)
                dhh = d_in[2, t]
                np.multiply(dh, a_h[t], out=dhh)
                np.multiply(dh, a_z[t], out=d_rec[0, t])
                np.multiply(dhh, a_r[t], out=d_rec[1, t])
                np.multiply(dhh, gr[t], out=d_rec[2, t])
                if t:
                    np.matmul(d_rec[:, t], u3t, out=rec)
                    if mh is not None:
                        np.multiply(rec, mh, out=rec)
                    np.add.reduce(rec, axis=0, out=d_next)
                    np.multiply(dh, gz[t], out=tmp)
                    d_next += tmp
            d_in[:2] = d_rec[:2]
        else:
            u_zr_t, u_h_t = np.ascontiguousarray(u3t[:2]), u3t[2]
            d_held = np.empty((batch, n), dtype)
            for t in range(steps - 1, -1, -1):
                np.add(g[t], d_next, out=dh)
                dhh = d_in[2, t]
                np.multiply(dh, a_h[t], out=dhh)
                np.multiply(dh, a_z[t], out=d_in[0, t])
                if t:
                    np.matmul(dhh, u_h_t, out=d_held)
                    np.multiply(d_held, a_r[t], out=d_in[1, t])
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
                else:
                    d_in[1, 0] = 0
            d_rec = None
        flat = d_in.reshape(3, steps * batch, n)
        d_wa = np.matmul(xm.transpose(0, 2, 1), flat)
        h_in = _masked_states(hs[1:steps], mh).transpose(0, 2, 1)
        if reset_after:
            d_u = np.matmul(h_in, d_rec[:, 1:].reshape(3, -1, n))
        else:
            d_u = np.empty((3, n, n), dtype)
            np.matmul(h_in[:2], d_in[:2, 1:].reshape(2, -1, n), out=d_u[:2])
            np.matmul(held[1:].reshape(-1, n).T, d_in[2, 1:].reshape(-1, n), out=d_u[2])

        def bias_grad():
            d_b_in = _keras_layout(d_wa[:, -1], order, n)
            if not reset_after:
                return d_b_in
            return np.stack([d_b_in, _keras_layout(d_rec.sum(axis=(1, 2)), order, n)])
        return tuple([_input_grad(x, flat, wa, dims, go_backwards, mx)]
                     + _weight_grads(parents, d_wa, d_u, order, n, bias_grad))

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
