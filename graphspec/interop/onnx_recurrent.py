"""SimpleRNN, LSTM, GRU and Bidirectional as ONNX RNN / LSTM / GRU nodes.

Gate layouts (the whole difficulty of this file):

- LSTM: Keras' kernel columns are blocks ``[i, f, c, o]``; ONNX's W/R rows are
  ``[i, o, f, c]``. The blocks are reordered and transposed once per layer instance.
- GRU: Keras ``[z, r, h]`` and ONNX ``[z, r, h]`` agree. ``reset_after=True`` (the reset
  gate applied to ``h U_h + b_rec_h``) is ONNX's ``linear_before_reset=1`` with
  ``B = [input bias, recurrent bias]``; ``reset_after=False`` is ``linear_before_reset=0``
  with the single bias as the input bias and zero recurrent bias.
- Activations: Keras' ``recurrent_activation`` is ONNX's gate function ``f``;
  ``activation`` is ``g`` (and ``h`` for the LSTM). graphspec's defaults are sigmoid and
  tanh (``graphspec/ops/recurrent.py``), as ONNX's, but both are always written out.

An activation the ONNX nodes lack (selu), and a masked call (the nodes take no step
mask), run the layer step by step instead (``onnx_unrolled``: unrolled, or one Scan over
a length known only at run time). ``go_backwards`` reverses the input in time and runs forwards, which is exactly what
graphspec does (its returned sequence is in processing order). Bidirectional runs its
two layers that way and reverses the backward sequence back before merging, as
``graphspec/layers/bidirectional.py``. The initial state is zeros in both.
"""
from __future__ import annotations

import numpy as np

from .onnx_unrolled import run_scan, run_unrolled, run_unrolled_masked

# graphspec's recurrent activation -> (ONNX name, alpha, beta); None: no ONNX form
_ACTIVATIONS = {
    "tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None), "softplus": ("Softplus", None, None),
    "linear": ("Affine", 1.0, 0.0), "elu": ("Elu", 1.0, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),   # Keras 3: relu6(x + 3) / 6
    "selu": None,
}
_ONNX_OP = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
_INT64_MIN = -(1 << 63)


def needs_unrolling(layer) -> bool:
    """An activation ONNX's recurrent nodes lack: the layer is unrolled over time."""
    return any(_ACTIVATIONS.get(layer.config.get(key), False) is None
               for key in ("activation", "recurrent_activation"))


def recurrent_refusal(layer, node) -> str | None:
    """A stateful layer cannot be exported: an ONNX graph holds no state from one run
    to the next."""
    if layer.config.get("stateful"):
        return ("it is stateful: its final state becomes the next batch's initial state, "
                "and an ONNX graph holds no state from one run to the next")
    return None


def _activation_attrs(names: list) -> dict:
    ops, alphas, betas = [], [], []
    for name in names:
        op, alpha, beta = _ACTIVATIONS[name]
        ops.append(op)
        alphas += [] if alpha is None else [alpha]
        betas += [] if beta is None else [beta]
    return {"activations": ops, "activation_alpha": alphas or None,
            "activation_beta": betas or None}


def _blocks(matrix, order, units):
    """Columns ``(rows, G*u)`` in Keras block order -> rows ``(G*u, rows)`` in ``order``."""
    return np.concatenate([matrix[:, k * units:(k + 1) * units] for k in order], axis=1).T


def _onnx_weights(layer):
    """(W, R, B or None) arrays in ONNX layout, one direction: (1, G*u, F), ..."""
    units, kind = layer.config["units"], layer.TYPE
    order = (0, 3, 1, 2) if kind == "LSTM" else tuple(range({"GRU": 3}.get(kind, 1)))
    kernel = layer.weights["kernel"].data
    recurrent = layer.weights["recurrent_kernel"].data
    w, r = _blocks(kernel, order, units)[None], _blocks(recurrent, order, units)[None]
    if not layer.config["use_bias"]:
        return w, r, None
    bias = layer.weights["bias"].data
    if kind == "GRU" and layer.config["reset_after"]:
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, np.zeros_like(bias)
    reorder = lambda v: np.concatenate([v[k * units:(k + 1) * units] for k in order])  # noqa: E731
    return w, r, np.concatenate([reorder(b_in), reorder(b_rec)])[None]


def _weights(b, layer) -> list:
    """Initializer names W, R, B (or "") of ``layer``, made once per instance."""
    cached = {}

    def part(i):
        if "arrays" not in cached:
            cached["arrays"] = _onnx_weights(layer)
        return cached["arrays"][i]
    names = [b.weight(layer, "onnx_W", lambda: part(0)), b.weight(layer, "onnx_R", lambda: part(1))]
    names.append(b.weight(layer, "onnx_B", lambda: part(2)) if layer.config["use_bias"] else "")
    return names


def reverse_time(b, x: str, hint: str) -> str:
    return b.slice(x, [-1], [_INT64_MIN], [1], [-1], hint)


def run_recurrent(b, layer, x: str, steps, hint: str, mask=None, zero_output=None) -> list:
    """One recurrent layer on ``x`` (batch, time, features): its graphspec outputs.
    ``mask``: the (batch, time) step mask (then unrolled: ONNX's nodes take no step
    mask); ``zero_output``: Bidirectional's forced ``zero_output_for_mask``."""
    cfg, kind = layer.config, layer.TYPE
    if cfg["go_backwards"]:
        x = reverse_time(b, x, f"{hint}_reversed")
        if mask is not None:
            mask = reverse_time(b, mask, f"{hint}_mask_reversed")
    if mask is not None:
        zero = cfg.get("zero_output_for_mask", False) if zero_output is None else zero_output
        if steps is None:
            seq, state = run_scan(b, layer, x, mask, hint, zero)
            return _scanned_outputs(b, layer, seq, state, hint)
        hs, state = run_unrolled_masked(b, layer, x, mask, steps, hint, zero)
        return _sequence_outputs(b, layer, hs, state, hint)
    if needs_unrolling(layer) and steps is None:
        seq, state = run_scan(b, layer, x, None, hint)
        return _scanned_outputs(b, layer, seq, state, hint)
    if needs_unrolling(layer):
        return _unrolled_outputs(b, layer, x, steps, hint)
    time_major = b.transpose(x, [1, 0, 2], f"{hint}_time_major")
    names = [cfg["activation"]] if kind == "SimpleRNN" else \
        [cfg["recurrent_activation"], cfg["activation"]] + \
        ([cfg["activation"]] if kind == "LSTM" else [])
    extra = {"linear_before_reset": int(cfg["reset_after"])} if kind == "GRU" else {}
    outs = b.op(_ONNX_OP[kind], [time_major] + _weights(b, layer), f"{hint}_{kind.lower()}",
                outputs=3 if kind == "LSTM" else 2, hidden_size=cfg["units"],
                direction="forward", **_activation_attrs(names), **extra)
    if cfg["return_sequences"]:
        seq = b.squeeze(outs[0], [1], f"{hint}_seq_tm")
        results = [b.transpose(seq, [1, 0, 2], hint)]
    else:
        results = [b.squeeze(outs[1], [0], hint)]
    if cfg["return_state"]:
        results.append(b.squeeze(outs[1], [0], f"{hint}_h"))
        if kind == "LSTM":
            results.append(b.squeeze(outs[2], [0], f"{hint}_c"))
    return results


def _unrolled_outputs(b, layer, x, steps, hint) -> list:
    hs, state = run_unrolled(b, layer, x, steps, hint)
    return _sequence_outputs(b, layer, hs, state, hint)


def _scanned_outputs(b, layer, seq, state, hint) -> list:
    """The graphspec outputs from a Scan's output sequence (batch, T, units)."""
    if layer.config["return_sequences"]:
        results = [b.op("Identity", [seq], hint)]
    else:
        results = [b.op("Gather", [seq, b.scalar(-1, "int64")], hint, axis=1)]
    if layer.config["return_state"]:
        results += [b.op("Identity", [s], f"{hint}_state") for s in state]
    return results


def _sequence_outputs(b, layer, hs, state, hint) -> list:
    if layer.config["return_sequences"]:
        rows = [b.unsqueeze(h, [1], f"{hint}_step") for h in hs]
        results = [b.op("Concat", rows, hint, axis=1) if len(rows) > 1
                   else b.op("Identity", rows, hint)]
    else:
        results = [b.op("Identity", [hs[-1]], hint)]
    if layer.config["return_state"]:
        results += [b.op("Identity", [s], f"{hint}_state") for s in state]
    return results


def recurrent(c):
    return run_recurrent(c.builder, c.layer, c.inputs[0], c.input_shapes[0][1], c.hint,
                         c.mask(0))


def bidirectional(c):
    b, layer = c.builder, c.layer
    forward_layer, backward_layer = layer.sublayers()
    steps = c.input_shapes[0][1]
    # Keras forces zero_output_for_mask = return_sequences on both layers
    zero = forward_layer.config["return_sequences"]
    fw = run_recurrent(b, forward_layer, c.inputs[0], steps, f"{c.hint}_forward",
                       c.mask(0), zero)
    bw = run_recurrent(b, backward_layer, c.inputs[0], steps, f"{c.hint}_backward",
                       c.mask(0), zero)
    y, y_rev, states = fw[0], bw[0], fw[1:] + bw[1:]
    if forward_layer.config["return_sequences"]:
        y_rev = reverse_time(b, y_rev, f"{c.hint}_backward_aligned")
    mode = layer.config["merge_mode"]
    if mode is None:
        return [y, y_rev] + states
    if mode == "concat":
        out = b.op("Concat", [y, y_rev], c.hint, axis=-1)
    elif mode == "sum":
        out = b.op("Add", [y, y_rev], c.hint)
    elif mode == "mul":
        out = b.op("Mul", [y, y_rev], c.hint)
    else:  # ave
        total = b.op("Add", [y, y_rev], f"{c.hint}_sum")
        out = b.op("Mul", [total, b.scalar(0.5, b.float_dtype)], c.hint)
    return [out] + states


RECURRENT_CONVERTERS = {"SimpleRNN": recurrent, "LSTM": recurrent, "GRU": recurrent,
                        "Bidirectional": bidirectional}
