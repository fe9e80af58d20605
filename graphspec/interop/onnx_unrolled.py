"""SimpleRNN, LSTM and GRU step by step, for what ONNX's RNN/LSTM/GRU nodes do not offer:
activations they lack (selu) and Keras' step mask (a masked step carries the states
over). The math of ``graphspec/ops/recurrent.py`` is written out with Keras' weight
layouts as they are: the input projection of every step is one MatMul; each step adds
its recurrent MatMul, slices the gate blocks and applies the activations through the
same table the Dense converter uses.

With the number of timesteps known when exporting (the spec gives it) the steps are
unrolled, one small group of nodes each; otherwise one ONNX Scan runs the same nodes
as its body over the time axis.
"""
from __future__ import annotations

import numpy as np

from ..errors import GraphspecError


def _activation(b, x: str, name: str, hint: str) -> str:
    from .onnx_nodes import activation
    if name == "hard_sigmoid":          # Keras 3: relu6(x + 3) / 6
        return b.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)
    return activation(b, x, name, hint)


def _block(b, x: str, k: int, units: int, hint: str) -> str:
    """Gate block ``k`` of a ``(..., G*units)`` tensor (the last axis)."""
    return b.slice(x, [k * units], [(k + 1) * units], [-1], hint=hint)


class _Cell:
    """The per-layer constants of an unrolled run: projections and weights."""

    def __init__(self, b, layer, x: str, hint: str):
        cfg = layer.config
        self.b, self.layer, self.units, self.hint = b, layer, cfg["units"], hint
        self.act, self.rec_act = cfg["activation"], cfg.get("recurrent_activation")
        kernel = b.weight(layer, "kernel", lambda: layer.weights["kernel"].data)
        self.u = b.weight(layer, "recurrent_kernel",
                          lambda: layer.weights["recurrent_kernel"].data)
        self.proj = b.op("MatMul", [x, kernel], f"{hint}_projected")
        self.b_rec = None
        if cfg["use_bias"]:
            bias = layer.weights["bias"].data
            if bias.ndim == 2:                   # GRU reset_after: input, recurrent bias
                self.b_rec = b.weight(layer, "bias_recurrent", lambda: bias[1])
                b_in = b.weight(layer, "bias_input", lambda: bias[0])
            else:
                b_in = b.weight(layer, "bias", lambda: bias)
            self.proj = b.op("Add", [self.proj, b_in], f"{hint}_projected_bias")

    def step_input(self, t: int) -> str:
        return self.b.op("Gather", [self.proj, self.b.scalar(t, "int64")], f"{self.hint}_x{t}",
                         axis=1)

    def recurrent(self, h: str, t: int) -> str:
        out = self.b.op("MatMul", [h, self.u], f"{self.hint}_r{t}")
        if self.b_rec is not None:
            out = self.b.op("Add", [out, self.b_rec], f"{self.hint}_rb{t}")
        return out

    def gate(self, pre: str, k: int, t: int, recurrent: bool = True) -> str:
        name = self.rec_act if recurrent else self.act
        return _activation(self.b, _block(self.b, pre, k, self.units, f"{self.hint}_g{k}_{t}"),
                           name, f"{self.hint}_a{k}_{t}")


def _simple_rnn_step(cell, b, t, state):
    pre = cell.step_input(t)
    if state is not None:
        pre = b.op("Add", [pre, cell.recurrent(state[0], t)], f"{cell.hint}_pre{t}")
    return [_activation(b, pre, cell.act, f"{cell.hint}_h{t}")]


def _lstm_step(cell, b, t, state):
    pre = cell.step_input(t)
    if state is not None:
        pre = b.op("Add", [pre, cell.recurrent(state[0], t)], f"{cell.hint}_pre{t}")
    i, f, o = cell.gate(pre, 0, t), cell.gate(pre, 1, t), cell.gate(pre, 3, t)
    cand = cell.gate(pre, 2, t, recurrent=False)
    c = b.op("Mul", [i, cand], f"{cell.hint}_ic{t}")
    if state is not None:
        c = b.op("Add", [b.op("Mul", [f, state[1]], f"{cell.hint}_fc{t}"), c],
                 f"{cell.hint}_c{t}")
    h = b.op("Mul", [o, _activation(b, c, cell.act, f"{cell.hint}_actc{t}")],
             f"{cell.hint}_h{t}")
    return [h, c]


def _gru_step(cell, b, t, state):
    x, n, reset_after = cell.step_input(t), cell.units, cell.layer.config["reset_after"]
    h_prev = None if state is None else state[0]
    rec = None
    if h_prev is not None:
        rec = cell.recurrent(h_prev, t)
    elif cell.b_rec is not None:       # h_0 = 0: the recurrent term is its bias alone
        rec = cell.b_rec
    pre_z, pre_r = (_block(b, x, k, n, f"{cell.hint}_x{k}_{t}") for k in (0, 1))
    if rec is not None:
        pre_z = b.op("Add", [pre_z, _block(b, rec, 0, n, f"{cell.hint}_rz{t}")],
                     f"{cell.hint}_pz{t}")
        pre_r = b.op("Add", [pre_r, _block(b, rec, 1, n, f"{cell.hint}_rr{t}")],
                     f"{cell.hint}_pr{t}")
    z = _activation(b, pre_z, cell.rec_act, f"{cell.hint}_z{t}")
    r = _activation(b, pre_r, cell.rec_act, f"{cell.hint}_r{t}")
    cand = _block(b, x, 2, n, f"{cell.hint}_xh{t}")
    if reset_after and rec is not None:
        held = _block(b, rec, 2, n, f"{cell.hint}_rh{t}")
        cand = b.op("Add", [cand, b.op("Mul", [r, held], f"{cell.hint}_reset{t}")],
                    f"{cell.hint}_ph{t}")
    elif not reset_after and h_prev is not None:
        u_h = b.weight(cell.layer, "recurrent_kernel_h",
                       lambda: cell.layer.weights["recurrent_kernel"].data[:, 2 * n:])
        reset = b.op("MatMul", [b.op("Mul", [r, h_prev], f"{cell.hint}_rh{t}"), u_h],
                     f"{cell.hint}_reset{t}")
        cand = b.op("Add", [cand, reset], f"{cell.hint}_ph{t}")
    cand = _activation(b, cand, cell.act, f"{cell.hint}_cand{t}")
    # h = z * h_prev + (1 - z) * cand  ==  cand + z * (h_prev - cand)
    if h_prev is None:
        one_minus = b.op("Sub", [b.scalar(1.0, b.float_dtype), z], f"{cell.hint}_1mz{t}")
        return [b.op("Mul", [one_minus, cand], f"{cell.hint}_h{t}")]
    delta = b.op("Mul", [z, b.op("Sub", [h_prev, cand], f"{cell.hint}_d{t}")],
                 f"{cell.hint}_zd{t}")
    return [b.op("Add", [cand, delta], f"{cell.hint}_h{t}")]


_STEPS = {"SimpleRNN": _simple_rnn_step, "LSTM": _lstm_step, "GRU": _gru_step}


def unknown_steps_reason(layer) -> str:
    return (f"its activations ({layer.config['activation']}, "
            f"{layer.config.get('recurrent_activation')}) are not offered by ONNX's "
            "recurrent nodes, and unrolling them needs a known number of timesteps; give "
            "the sequence length in the input shape")


def run_unrolled(b, layer, x: str, steps, hint: str) -> tuple:
    """(per-step hidden states, final states) of ``layer`` on ``x`` (batch, T, F)."""
    if steps is None:
        raise GraphspecError(f"{layer.TYPE} layer '{layer.name}' cannot be exported to ONNX: "
                             + unknown_steps_reason(layer))
    cell = _Cell(b, layer, x, hint)
    step, state, hs = _STEPS[layer.TYPE], None, []
    for t in range(steps):
        state = step(cell, b, t, state)
        hs.append(state[0])
    return hs, state


def run_unrolled_masked(b, layer, x: str, mask: str, steps, hint: str,
                        zero_output: bool) -> tuple:
    """(per-step outputs, final states) of ``layer`` on ``x`` (batch, T, F) with Keras'
    step ``mask`` (batch, T): at a masked step the states carry over and the output
    repeats the previous output (zeros before the first kept step), or is zeros with
    ``zero_output`` (``graphspec/ops/recurrent_base.py``)."""
    if steps is None:
        raise GraphspecError(f"{layer.TYPE} layer '{layer.name}' cannot be exported to ONNX: "
                             + masked_steps_reason(layer))
    from onnx import numpy_helper
    cell = _Cell(b, layer, x, hint)
    size = b.op("Concat", [b.batch_of(x, f"{hint}_batch"), b.i64([layer.config["units"]])],
                f"{hint}_state_shape", axis=0)
    zeros = b.op("ConstantOfShape", [size], f"{hint}_zeros",
                 value=numpy_helper.from_array(np.zeros(1, b.float_dtype)))
    step = _STEPS[layer.TYPE]
    state = [zeros] * (2 if layer.TYPE == "LSTM" else 1)
    previous, outputs = zeros, []
    for t in range(steps):
        new = step(cell, b, t, state)
        keep = b.unsqueeze(b.op("Gather", [mask, b.scalar(t, "int64")], f"{hint}_m{t}",
                                axis=1), [1], f"{hint}_keep{t}")
        state = [b.op("Where", [keep, n, s], f"{hint}_held{t}_{i}")
                 for i, (n, s) in enumerate(zip(new, state))]
        previous = b.op("Where", [keep, new[0], zeros if zero_output else previous],
                        f"{hint}_out{t}")
        outputs.append(previous)
    return outputs, state


def run_scan(b, layer, x: str, mask, hint: str, zero_output: bool = False) -> tuple:
    """The layer over a number of timesteps known only at run time: one ONNX Scan over
    time whose body is one step (the nodes above, on the step's slice of the input
    projection and, with a ``mask``, of the mask, applied as :func:`run_unrolled_masked`
    applies it; the weights are read from the outer graph). Returns ``(the output
    sequence (batch, T, units), final states)``."""
    from onnx import TensorProto, helper, numpy_helper
    cell = _Cell(b, layer, x, hint)
    size = b.op("Concat", [b.batch_of(x, f"{hint}_batch"), b.i64([layer.config["units"]])],
                f"{hint}_state_shape", axis=0)
    zeros = b.op("ConstantOfShape", [size], f"{hint}_zeros",
                 value=numpy_helper.from_array(np.zeros(1, b.float_dtype)))
    n_states = 2 if layer.TYPE == "LSTM" else 1
    outer_nodes, b.nodes = b.nodes, []          # the body's nodes go to their own graph
    try:
        states = [b.fresh(f"{hint}_state{i}_in") for i in range(n_states)]
        previous, x_t, m_t = (b.fresh(f"{hint}_{n}") for n in ("out_in", "x_t", "m_t"))
        cell.step_input = lambda t: x_t
        new = _STEPS[layer.TYPE](cell, b, 0, states)
        if mask is None:
            held, out = new, new[0]
        else:
            keep = b.unsqueeze(m_t, [1], f"{hint}_keep")
            held = [b.op("Where", [keep, n, s], f"{hint}_held{i}")
                    for i, (n, s) in enumerate(zip(new, states))]
            out = b.op("Where", [keep, new[0], b.scalar(0, b.float_dtype) if zero_output
                                 else previous], f"{hint}_out")
        held = [b.op("Identity", [h], f"{hint}_state{i}_out") for i, h in enumerate(held)]
        out, seq = (b.op("Identity", [out], f"{hint}_{n}") for n in ("out", "out_t"))
        body_nodes = b.nodes
    finally:
        b.nodes = outer_nodes
    value = lambda name, kind=TensorProto.FLOAT: helper.make_tensor_value_info(  # noqa: E731
        name, kind, None)
    scanned = [value(x_t)] + ([] if mask is None else [value(m_t, TensorProto.BOOL)])
    body = helper.make_graph(body_nodes, f"{hint}_step",
                             [value(s) for s in states] + [value(previous)] + scanned,
                             [value(h) for h in held] + [value(out), value(seq)])
    sequences = [cell.proj] + ([] if mask is None else [mask])
    outs = b.op("Scan", [zeros] * (n_states + 1) + sequences, f"{hint}_scan",
                outputs=n_states + 2, body=body, num_scan_inputs=len(sequences),
                scan_input_axes=[1] * len(sequences), scan_output_axes=[1])
    return outs[-1], outs[:n_states]
