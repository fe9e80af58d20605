"""``stateful: true`` SimpleRNN/LSTM/GRU (and Bidirectional of them) with Keras 3's
semantics: the final states of a batch start the next batch sample by sample, the state
lives on the layer (not a weight), ``reset_states`` starts over, a batch of another size
is refused, and training carries the state without a gradient into the previous batch.
Keras (torch backend) is the reference, with masks too."""
import os

# Keras picks its backend when first imported: torch, the reference here
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import graphspec
from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import InputError, SpecErrors
from graphspec.layers.simple_rnn import reset_model_states
from graphspec.runtime import executor

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

B, T, F, U = 3, 8, 2, 4
HALF = T // 2
KINDS = ["SimpleRNN", "LSTM", "GRU"]
WORST = {}


@pytest.fixture(autouse=True)
def keras_float64(monkeypatch):
    """A float64 Keras reference (Keras demotes float64 products to float32 otherwise;
    see test_masked_rnn.py)."""
    from keras.src.backend.common import dtypes
    monkeypatch.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")


def spec(kind, stateful=True, bidirectional=False, steps=HALF, states=True):
    inner = (f"{{type: {kind}, name: rnn, units: {U}, return_sequences: true, "
             f"return_state: {str(states).lower()}, stateful: {str(stateful).lower()}}}")
    layer = f"{{type: Bidirectional, name: bi, layer: {inner}}}" if bidirectional else inner
    n_states = (2 if kind == "LSTM" else 1) * (2 if bidirectional else 1) * states
    outs = ", ".join(["y"] + [f"s{i}" for i in range(n_states)])
    return f"""\
graphspec: 1
models:
  m:
    inputs: {{x: {{shape: [{steps}, {F}]}}}}
    calls:
      - {{layer: {layer}, in: x, out: [{outs}]}}
    outputs: [{outs}]
"""


def build(text, seed=0):
    graph = graphspec.loads(text, seed=0, dtype="float64")
    rng = np.random.default_rng(seed)
    weights = {k: rng.uniform(-0.7, 0.7, v.data.shape) for k, v in graph.weights().items()}
    graph.set_weights(weights)
    return graph, weights


def run(graph, x):
    model = graph.model("m")
    values = executor.run(model, [x])           # one run: each run moves the state on
    return [values[t.slot].data for t in model.outputs]


def sequences(seed=1, steps=T):
    return np.random.default_rng(seed).standard_normal((B, steps, F))


def close(label, want, got, tol=1e-12):
    scale = max(1.0, float(np.max(np.abs(want))))
    err = float(np.max(np.abs(np.asarray(want) - got))) / scale
    WORST[label] = max(WORST.get(label, 0.0), err)
    assert err <= tol, f"{label}: {err:.3g}"


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_two_batches_equal_one_long_sequence(kind, bidirectional):
    """Forwards, two halves through a stateful layer continue the sequence exactly; the
    backward direction of a Bidirectional reads each half from its own end (as Keras)."""
    stateful, weights = build(spec(kind, bidirectional=bidirectional))
    whole, _ = build(spec(kind, stateful=False, bidirectional=bidirectional, steps=T))
    x = sequences()
    first, second = run(stateful, x[:, :HALF]), run(stateful, x[:, HALF:])
    full = run(whole, x)
    if not bidirectional:
        close("split == whole", full[0], np.concatenate([first[0], second[0]], axis=1))
        for want, got in zip(full[1:], second[1:]):
            close("split == whole", want, got)
    else:   # the forward direction's half of the merged output, and its states
        close("split == whole", full[0][..., :U],
              np.concatenate([first[0][..., :U], second[0][..., :U]], axis=1))


def test_reset_states_starts_over_and_the_state_is_not_a_weight(tmp_path):
    graph, _ = build(spec("LSTM"))
    x = sequences()[:, :HALF]
    first = run(graph, x)
    assert not np.allclose(run(graph, x)[0], first[0])       # the state carried on
    layer = graph.layers["rnn"]
    assert len(layer.states) == 2 and layer.states[0].shape == (B, U)
    layer.reset_states()
    np.testing.assert_array_equal(run(graph, x)[0], first[0])
    assert reset_model_states(graph.model("m")) == 1
    np.testing.assert_array_equal(run(graph, x)[0], first[0])
    assert set(graph.weights()) == {"rnn/kernel", "rnn/recurrent_kernel", "rnn/bias"}
    graph.save_weights(tmp_path / "w.npz")
    assert not any("state" in k for k in np.load(tmp_path / "w.npz").files)


def test_bidirectional_both_directions_are_stateful_and_reset_by_the_model_walk():
    graph, _ = build(spec("GRU", bidirectional=True))
    x = sequences()[:, :HALF]
    first = run(graph, x)
    run(graph, x)
    fw, bw = graph.layers["bi"].sublayers()
    assert fw.states is not None and bw.states is not None
    assert reset_model_states(graph.model("m")) == 2
    assert fw.states is None and bw.states is None
    np.testing.assert_array_equal(run(graph, x)[0], first[0])


def test_bidirectional_directions_must_agree_in_stateful():
    text = spec("LSTM", bidirectional=True).replace(
        "layer: {type: LSTM", "backward_layer: {type: LSTM, name: b, units: 4, "
        "go_backwards: true, return_sequences: true, return_state: true}, layer: {type: LSTM")
    with pytest.raises(SpecErrors, match='same value for attribute "stateful"'):
        graphspec.loads(text)


def test_another_batch_size_is_an_input_error():
    graph, _ = build(spec("GRU"))
    x = sequences()[:, :HALF]
    run(graph, x)
    with pytest.raises(InputError, match=r"stateful: its state holds 3 sequences, but "
                                         r"this batch has 2 rows"):
        run(graph, x[:2])
    graph.layers["rnn"].reset_states()
    assert run(graph, x[:2])[0].shape == (2, HALF, U)        # a reset frees the size


def test_predict_in_batches_carries_the_state_from_batch_to_batch():
    """Keras: consecutive batches of one predict continue the same rows' sequences."""
    graph, _ = build(spec("SimpleRNN"))
    x = sequences()[:, :HALF]
    both = graph.model("m").predict({"x": np.concatenate([x, x])}, batch_size=B)["y"]
    graph.layers["rnn"].reset_states()
    once = run(graph, x)[0]
    again = run(graph, x)[0]
    np.testing.assert_array_equal(both[:B], once)
    np.testing.assert_array_equal(both[B:], again)


# -- Keras, with masks: a stateful Keras layer over two batches ---------------------------
def keras_stateful(kind, weights, masked):
    inp = keras.Input(batch_shape=(B, HALF) if masked else (B, HALF, F),
                      dtype="int32" if masked else "float64")
    h = inp
    layers = {}
    if masked:
        layers["emb"] = keras.layers.Embedding(7, F, mask_zero=True, dtype="float64")
        h = layers["emb"](h)
    layers["rnn"] = getattr(keras.layers, kind)(U, stateful=True, return_sequences=True,
                                                return_state=True, dtype="float64")
    model = keras.Model(inp, list(layers["rnn"](h)))
    for key, value in weights.items():
        name, weight = key.split("/")
        var = {v.path.split("/")[-1]: v for v in layers[name].weights}[weight]
        var.assign(value)
    return model


def masked_spec(kind):
    body = spec(kind).replace(
        f"inputs: {{x: {{shape: [{HALF}, {F}]}}}}",
        f"inputs: {{ids: {{shape: [{HALF}], dtype: int32}}}}")
    return body.replace("    calls:\n", "    calls:\n      - {layer: {type: Embedding, "
                        f"name: emb, input_dim: 7, output_dim: {F}, mask_zero: true}}, "
                        "in: ids, out: x}\n")


# batch 1 ends masked for row 0 and row 2 is masked throughout batch 2: Keras outputs
# zeros at a batch's leading masked steps even though the carried state is not zero
IDS = np.array([[1, 2, 0, 0, 0, 3, 4, 0],
                [0, 5, 6, 1, 2, 0, 0, 3],
                [4, 4, 1, 2, 0, 0, 0, 0]], np.int32)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_two_batches_equal_keras_stateful(kind, masked):
    graph, weights = build(masked_spec(kind) if masked else spec(kind))
    model = keras_stateful(kind, weights, masked)
    data = IDS if masked else sequences()
    for half in (data[:, :HALF], data[:, HALF:]):
        theirs = [keras.ops.convert_to_numpy(o) for o in model(half)]
        ours = run(graph, half)
        for want, got in zip(theirs, ours):
            close("forward vs Keras stateful", want, got)
    if masked:     # row 2's second batch is all masked: zero outputs, the state held
        assert not ours[0][2].any() and ours[1][2].any()


def test_training_carries_the_state_without_a_gradient_into_the_previous_batch():
    """The gradients of batch 2 equal Keras': torch's autograd through Keras' stateful
    LSTM (whose carried state is a variable: no graph back into batch 1)."""
    graph, weights = build(masked_spec("LSTM"))
    model = keras_stateful("LSTM", weights, masked=True)
    gm = graph.model("m")
    probes = [np.random.default_rng(3).standard_normal(s) for s in
              ((B, HALF, U), (B, U), (B, U))]
    model(IDS[:, :HALF], training=True)
    outs = model(IDS[:, HALF:], training=True)
    loss = sum((o * torch.as_tensor(p)).sum() for o, p in zip(outs, probes))
    loss.backward()
    theirs = {f"{'emb' if 'embedding' in v.path else 'rnn'}/{v.path.split('/')[-1]}":
              v.value.grad.numpy() for v in model.trainable_weights}
    executor.run(gm, [IDS[:, :HALF]], executor.context(gm, training=True))
    for var in graph.weights().values():
        var.grad = None
    with recording():
        values = executor.run(gm, [IDS[:, HALF:]], executor.context(gm, training=True),
                              record=True)
        total = None
        for t, p in zip(gm.outputs, probes):
            term = ops.sum_(ops.mul(values[t.slot], Variable(p)))
            total = term if total is None else ops.add(total, term)
        backward(total)
    for name, want in theirs.items():
        close("batch-2 gradient vs Keras", want, graph.weights()[name].grad)
    assert all(isinstance(s, np.ndarray) for s in graph.layers["rnn"].states)


def test_stateful_bidirectional_over_two_batches_equals_keras():
    """Both directions carry their own state: the backward one from the start of the
    previous batch (where its last pass ended), as Keras' stateful Bidirectional.
    (Without return_state: Keras' Bidirectional.compute_mask fails on a stateful layer
    with return_state, multiplying a generator.)"""
    graph, weights = build(spec("LSTM", bidirectional=True, states=False))
    inp = keras.Input(batch_shape=(B, HALF, F), dtype="float64")
    bi = keras.layers.Bidirectional(
        keras.layers.LSTM(U, stateful=True, return_sequences=True, dtype="float64"),
        dtype="float64")
    model = keras.Model(inp, bi(inp))
    for layer, name in ((bi.forward_layer, "rnn"), (bi.backward_layer, "backward_rnn")):
        for var, w in zip(layer.weights, ("kernel", "recurrent_kernel", "bias")):
            var.assign(weights[f"{name}/{w}"])
    x = sequences()
    for half in (x[:, :HALF], x[:, HALF:]):
        [ours] = run(graph, half)
        close("forward vs Keras stateful", keras.ops.convert_to_numpy(model(half)), ours)


def test_zz_report_worst_errors():
    for label, err in sorted(WORST.items()):
        print(f"stateful RNN {label}: max relative error {err:.2e}")
    assert WORST
