"""Masked SimpleRNN/LSTM/GRU and Bidirectional with Keras 3's exact semantics (torch
backend as the reference): the mask comes from ``Embedding(mask_zero)`` over left- and
right-padded sequences, one with a hole and one fully masked row. Same weights -> same
outputs (float64 and float32), same gradients of one training step (the tape vs
torch's autograd through Keras), and the fused BPTT vs finite differences (float64).
The output masks follow Keras' ``compute_mask``; TimeDistributed passes the mask on."""
import os

# Keras picks its backend when first imported: torch, the reference here
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
from gradcheck import check_gradients

import graphspec
from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.ops import recurrent
from graphspec.runtime import executor

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

VOCAB, F, U, T = 7, 3, 3, 6
# left-padded, right-padded, a hole in the middle, fully masked, unpadded
IDS = np.array([[0, 0, 3, 1, 4, 2],
                [5, 2, 6, 0, 0, 0],
                [1, 0, 3, 0, 2, 6],
                [0, 0, 0, 0, 0, 0],
                [4, 4, 1, 2, 3, 5]], np.int32)
KINDS = {"SimpleRNN": {}, "LSTM": {}, "GRU": {}, "GRU_v1": {"reset_after": False}}
VARIANTS = {
    "last": {},
    "sequences": {"return_sequences": True},
    "backwards": {"go_backwards": True, "return_sequences": True},
    "backwards_last": {"go_backwards": True},
    "state": {"return_state": True},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "zero_output": {"return_sequences": True, "zero_output_for_mask": True},
    "bidirectional": {"bidirectional": "concat", "return_sequences": True},
    "bidirectional_last": {"bidirectional": "sum"},
    "bidirectional_state": {"bidirectional": None, "return_sequences": True,
                            "return_state": True},
}
WORST = {}       # measured max relative errors, printed by the last test


@pytest.fixture(autouse=True)
def keras_float64(monkeypatch):
    """Keras' type promotion demotes float64 to float32 (``BIT64_TO_BIT32_DTYPE``, to
    agree with JAX's default), so a float64 Keras layer multiplies in float32 (~5e-8
    off). For a float64 reference, Keras keeps float64 here; its code path is otherwise
    unchanged."""
    from keras.src.backend.common import dtypes
    monkeypatch.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")


def keras_type(kind):
    return kind.split("_")[0]


def _yaml_args(args):
    return ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in args.items())


def spec_text(kind, variant):
    """Embedding(mask_zero) -> the recurrent layer (maybe wrapped), every output."""
    args = dict(KINDS[kind], **{k: v for k, v in VARIANTS[variant].items()
                                if k != "bidirectional"})
    inner = f"{{type: {keras_type(kind)}, name: rnn, units: {U}, {_yaml_args(args)}}}"
    n_out = count_outputs(kind, variant)
    if "bidirectional" in VARIANTS[variant]:
        mode = VARIANTS[variant]["bidirectional"]
        layer = (f"{{type: Bidirectional, name: bi, layer: {inner}, "
                 f"merge_mode: {'null' if mode is None else mode}}}")
    else:
        layer = inner
    outs = [f"y{i}" for i in range(n_out)]
    return f"""\
graphspec: 1
models:
  m:
    inputs: {{ids: {{shape: [{T}], dtype: int32}}}}
    calls:
      - {{layer: {{type: Embedding, name: emb, input_dim: {VOCAB}, output_dim: {F},
                 mask_zero: true}}, in: ids, out: e}}
      - {{layer: {layer}, in: e, out: [{", ".join(outs)}]}}
    outputs: [{", ".join(outs)}]
"""


def count_outputs(kind, variant):
    v = VARIANTS[variant]
    states = (2 if keras_type(kind) == "LSTM" else 1) if v.get("return_state") else 0
    if "bidirectional" in v:
        return (2 if v["bidirectional"] is None else 1) + 2 * states
    return 1 + states


def random_weights(graph, seed=0):
    """Every weight, keyed ``layer/weight``, with non-trivial values (biases too)."""
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-0.8, 0.8, v.data.shape) for k, v in graph.weights().items()}


def build(kind, variant, dtype="float64", seed=0):
    graph = graphspec.loads(spec_text(kind, variant), seed=0, dtype=dtype)
    weights = random_weights(graph, seed)
    graph.set_weights(weights)
    return graph, weights


def keras_model(kind, variant, weights, dtype="float64"):
    """The same network in Keras, with the same weights by name."""
    v = VARIANTS[variant]
    args = dict(KINDS[kind], **{k: val for k, val in v.items() if k != "bidirectional"})
    ids = keras.Input((T,), dtype="int32")
    emb = keras.layers.Embedding(VOCAB, F, mask_zero=True, dtype=dtype)
    rnn = getattr(keras.layers, keras_type(kind))(U, dtype=dtype, **args)
    layer = rnn if "bidirectional" not in v else \
        keras.layers.Bidirectional(rnn, merge_mode=v["bidirectional"], dtype=dtype)
    out = layer(emb(ids))
    model = keras.Model(ids, list(out) if isinstance(out, (list, tuple)) else [out])
    emb.embeddings.assign(weights["emb/embeddings"])
    directions = [rnn] if "bidirectional" not in v else \
        [layer.forward_layer, layer.backward_layer]
    for keras_layer, name in zip(directions, ["rnn", "backward_rnn"]):
        for var, w in zip(keras_layer.weights, ("kernel", "recurrent_kernel", "bias")):
            var.assign(weights[f"{name}/{w}"])
    return model


def as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def record_worst(label, want, got):
    scale = max(1.0, float(np.max(np.abs(want))))
    err = float(np.max(np.abs(np.asarray(want, np.float64) - got))) / scale
    WORST[label] = max(WORST.get(label, 0.0), err)
    return err


def graphspec_outputs(graph):
    model = graph.model("m")
    values = executor.run(model, [IDS])
    return [values[t.slot].data for t in model.outputs]


CASES = [(k, v) for k in KINDS for v in VARIANTS
         if not (v == "zero_output" and k != "LSTM")]


@pytest.mark.parametrize("kind,variant", CASES)
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
def test_forward_equals_keras(kind, variant, dtype, tol):
    graph, weights = build(kind, variant, dtype)
    theirs = [keras.ops.convert_to_numpy(o) for o in
              as_list(keras_model(kind, variant, weights, dtype)(IDS, training=False))]
    ours = graphspec_outputs(graph)
    assert len(ours) == len(theirs)
    for want, got in zip(theirs, ours):
        assert want.shape == got.shape and got.dtype == np.dtype(dtype)
        assert record_worst(f"forward {dtype}", want, got) <= tol


def test_fully_masked_row_outputs_zeros_and_keeps_the_zero_state():
    graph, _ = build("LSTM", "sequences_state")
    y, h, c = graphspec_outputs(graph)
    assert not y[3].any() and not h[3].any() and not c[3].any()
    # right padding: the output repeats the last kept step's, the state stays
    np.testing.assert_array_equal(y[1, 3:], np.repeat(y[1, 2:3], 3, axis=0))
    np.testing.assert_array_equal(h[1], y[1, 2])


def probes_for(outputs, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape) for o in outputs]


def keras_gradients(model, probes):
    """d sum(out * probe) / d weights, by torch's autograd through Keras (training)."""
    for v in model.trainable_weights:
        v.value.grad = None
    outs = as_list(model(IDS, training=True))
    loss = sum((o * torch.as_tensor(p, dtype=o.dtype)).sum() for o, p in zip(outs, probes))
    loss.backward()
    return [v.value.grad.detach().cpu().numpy() for v in model.trainable_weights]


def keras_weight_names(kind, variant):
    names = ["emb/embeddings"]
    for layer in ["rnn"] + (["backward_rnn"] if "bidirectional" in VARIANTS[variant] else []):
        names += [f"{layer}/{w}" for w in ("kernel", "recurrent_kernel", "bias")]
    return names


def graphspec_loss(graph, probes, training=True):
    model = graph.model("m")
    values = executor.run(model, [IDS], executor.context(model, training=training),
                          record=True)
    outs = [values[t.slot] for t in model.outputs]
    total = None
    for o, p in zip(outs, probes):
        term = ops.sum_(ops.mul(o, Variable(p.astype(o.data.dtype))))
        total = term if total is None else ops.add(total, term)
    return total


@pytest.mark.parametrize("kind,variant", CASES)
def test_training_gradients_equal_keras(kind, variant):
    graph, weights = build(kind, variant)
    model = keras_model(kind, variant, weights)
    probes = probes_for(graphspec_outputs(graph))
    theirs = keras_gradients(model, probes)
    current = graph.weights()
    for var in current.values():
        var.grad = None
    with recording():
        backward(graphspec_loss(graph, probes))
    for name, want in zip(keras_weight_names(kind, variant), theirs):
        got = current[name].grad
        assert got is not None, name
        assert record_worst("gradient float64", want, got) <= 1e-10, name


FD_CASES = [(k, v) for k in KINDS for v in ("sequences_state", "backwards", "last",
                                            "bidirectional_state", "zero_output")
            if not (v == "zero_output" and k != "LSTM")]


@pytest.mark.parametrize("kind,variant", FD_CASES)
def test_gradients_equal_finite_differences(kind, variant):
    """The tape's gradients through the masked fused BPTT vs central differences."""
    graph, weights = build(kind, variant)
    names = list(weights)
    model = graph.model("m")

    def fn(*values):
        return outputs_as_variables(model, values, names)
    check_gradients(fn, *[weights[n] for n in names])


def outputs_as_variables(model, values, names):
    """One run of ``model`` with the weight Variables ``values`` in place (the tape
    then reaches them)."""
    saved = {}
    for name, value in zip(names, values):
        layer, weight = name.split("/")
        owner = _layer_named(model, layer)
        saved[name] = owner.weights[weight]
        owner.weights[weight] = value
    try:
        out = executor.run(model, [IDS], record=True)
        return [out[t.slot] for t in model.outputs]
    finally:
        for name in names:
            layer, weight = name.split("/")
            _layer_named(model, layer).weights[weight] = saved[name]


def _layer_named(model, name):
    return next(layer for layer in model.layers() if layer.name == name)


# -- the op directly: step mask with dropout masks and an initial state ------------------
@pytest.mark.parametrize("op,gates,states,kwargs", [
    (recurrent.simple_rnn, 1, 1, {}), (recurrent.lstm, 4, 2, {}),
    (recurrent.gru, 3, 1, {}), (recurrent.gru, 3, 1, {"reset_after": False}),
    (recurrent.lstm, 4, 2, {"go_backwards": True, "zero_output": True}),
])
def test_op_finite_differences_with_step_mask_dropout_and_initial_state(op, gates, states,
                                                                         kwargs):
    """Every input's gradient, the initial states' included (Keras' initial_state from
    another layer), through masked steps, dropout masks and go_backwards."""
    rng = np.random.default_rng(4)
    b, t, f, u = 3, 5, 2, 3
    mask = np.array([[0, 1, 1, 0, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    init = [rng.standard_normal((b, u)) for _ in range(states)]
    drop_x = rng.choice([0.0, 1 / 0.7], (gates, b, f))
    drop_h = rng.choice([0.0, 1 / 0.8], (gates, b, u))
    bias = (2, gates * u) if op is recurrent.gru and kwargs.get("reset_after", True) \
        else (gates * u,)
    arrays = [rng.standard_normal((b, t, f))] + [rng.uniform(-0.7, 0.7, s) for s in
                                                  ((f, gates * u), (u, gates * u), bias)]

    for step_mask in (mask, None):
        def fn(x, k, rk, bb, *starts):
            return op(x, k, rk, bb, step_mask=step_mask, initial_state=list(starts),
                      input_mask=drop_x, recurrent_mask=drop_h, **kwargs)
        check_gradients(fn, *arrays, *init)      # the initial states get gradients too
        zeros = [np.zeros_like(s) for s in init]  # a zero start skips a product, not a grad
        check_gradients(fn, *arrays, *zeros)


def test_op_masked_steps_keep_a_nonzero_initial_state_and_output_zeros_before():
    """Keras: before the first kept step the output is its zero 'previous output' even
    when the initial state is not zero; the state itself is carried."""
    rng = np.random.default_rng(0)
    h0, c0 = rng.standard_normal((2, 2, 3))
    x = rng.standard_normal((2, 4, 2))
    mask = np.array([[0, 0, 1, 1], [0, 0, 0, 0]], bool)
    w = [rng.standard_normal(s) for s in ((2, 12), (3, 12), (12,))]
    packed = recurrent.lstm(x, *w, step_mask=mask, initial_state=[h0, c0]).data
    assert not packed[:2].any() and not packed[:4, 1].any()
    np.testing.assert_array_equal(packed[4, 1], h0[1])
    np.testing.assert_array_equal(packed[5, 1], c0[1])
    cell = keras.layers.LSTMCell(3, dtype="float64")
    cell.build((None, 2))
    for var, value in zip(cell.weights, w):
        var.assign(value)
    state = [h0[:1], c0[:1]]
    for step in (2, 3):
        out, state = cell(x[:1, step], state)
    np.testing.assert_allclose(packed[3, 0], keras.ops.convert_to_numpy(out)[0], rtol=1e-12)


# -- output masks (Keras' compute_mask) ----------------------------------------------------
@pytest.mark.parametrize("variant,expected", [
    ("last", [False]), ("sequences", [True]), ("sequences_state", [True, False, False]),
    ("bidirectional", [True]), ("bidirectional_last", [False]),
    ("bidirectional_state", [True, True, False, False, False, False]),
])
def test_output_masks_follow_keras_compute_mask(variant, expected):
    graph, weights = build("LSTM", variant)
    model = graph.model("m")
    _, masks = executor.run(model, [IDS], with_masks=True)
    got = [masks[t.slot] is not None for t in model.outputs]
    assert got == expected
    assert [t.mask_source is not None for t in model.outputs] == expected
    for t, carries in zip(model.outputs, expected):
        if carries:
            np.testing.assert_array_equal(masks[t.slot], IDS != 0)
    km = keras_model("LSTM", variant, weights)
    keras_masks = [getattr(o, "_keras_mask", None) for o in km.outputs]
    assert [m is not None for m in keras_masks] == expected


def test_time_distributed_passes_the_mask_to_an_rnn_and_on():
    """TimeDistributed(LSTM) over (batch, sentences, words): each sentence's LSTM skips
    its padded words (Keras passes mask[:, i] to every step); the output carries the
    mask when it fits (Dense), and drops it where the rank changes (Keras would keep a
    mask of the wrong rank)."""
    ids = np.array([[[1, 2, 0], [0, 3, 4]], [[0, 0, 0], [5, 0, 6]]], np.int32)
    text = f"""\
graphspec: 1
models:
  m:
    inputs: {{ids: {{shape: [2, 3], dtype: int32}}}}
    calls:
      - {{layer: {{type: Embedding, name: emb, input_dim: {VOCAB}, output_dim: {F},
                 mask_zero: true}}, in: ids, out: e}}
      - {{layer: {{type: TimeDistributed, name: td, layer: {{type: LSTM, name: rnn,
                 units: {U}}}}}, in: e, out: s}}
      - {{layer: {{type: TimeDistributed, name: tdd, layer: {{type: Dense, name: d,
                 units: 2}}}}, in: e, out: p}}
    outputs: [s, p]
"""
    graph = graphspec.loads(text, seed=0, dtype="float64")
    weights = random_weights(graph)
    graph.set_weights(weights)
    model = graph.model("m")
    values, masks = executor.run(model, [ids], with_masks=True)
    s, p = model.outputs
    assert masks[s.slot] is None and s.mask_source is None
    np.testing.assert_array_equal(masks[p.slot], ids != 0)
    assert p.mask_source == "emb"
    inp = keras.Input((2, 3), dtype="int32")
    emb = keras.layers.Embedding(VOCAB, F, mask_zero=True, dtype="float64")
    rnn = keras.layers.LSTM(U, dtype="float64")
    out = keras.layers.TimeDistributed(rnn, dtype="float64")(emb(inp))
    km = keras.Model(inp, out)
    emb.embeddings.assign(weights["emb/embeddings"])
    for var, w in zip(rnn.weights, ("kernel", "recurrent_kernel", "bias")):
        var.assign(weights[f"rnn/{w}"])
    want = keras.ops.convert_to_numpy(km(ids))
    assert record_worst("forward float64", want, values[s.slot].data) <= 1e-10


def test_masking_layer_mask_reaches_a_bidirectional_gru_as_in_keras():
    """The other mask maker: Masking(mask_value) on float steps, then Bidirectional(GRU)
    with return_sequences (zeros at masked steps in both directions)."""
    x = np.random.default_rng(2).standard_normal((3, T, F))
    x[0, :2] = -1.0
    x[1, 4:] = -1.0
    x[2] = -1.0
    text = f"""\
graphspec: 1
models:
  m:
    inputs: {{x: {{shape: [{T}, {F}]}}}}
    calls:
      - {{layer: {{type: Masking, name: mk, mask_value: -1.0}}, in: x, out: e}}
      - {{layer: {{type: Bidirectional, name: bi, layer: {{type: GRU, name: rnn,
                 units: {U}, return_sequences: true}}}}, in: e, out: y}}
    outputs: [y]
"""
    graph = graphspec.loads(text, seed=0, dtype="float64")
    weights = random_weights(graph)
    graph.set_weights(weights)
    inp = keras.Input((T, F), dtype="float64")
    bi = keras.layers.Bidirectional(keras.layers.GRU(U, return_sequences=True,
                                                     dtype="float64"), dtype="float64")
    km = keras.Model(inp, bi(keras.layers.Masking(-1.0, dtype="float64")(inp)))
    for layer, name in ((bi.forward_layer, "rnn"), (bi.backward_layer, "backward_rnn")):
        for var, w in zip(layer.weights, ("kernel", "recurrent_kernel", "bias")):
            var.assign(weights[f"{name}/{w}"])
    model = graph.model("m")
    ours = executor.run(model, [x])[model.outputs[0].slot].data
    want = keras.ops.convert_to_numpy(km(x))
    assert not ours[2].any()
    assert record_worst("forward float64", want, ours) <= 1e-10


def test_zz_report_worst_errors():
    """Prints the measured worst relative errors of this file (pytest -s)."""
    for label, err in sorted(WORST.items()):
        print(f"masked RNN {label}: max relative error {err:.2e}")
    assert WORST
