"""spec -> .keras: Keras 3 loads every exportable shipped model and predicts what
graphspec predicts; importing the file back gives the same compiled graph."""
import numpy as np
import pytest
from conftest import compare_outputs, random_feeds
from specs_util import SPECS
from test_keras_table import BASE

from graphspec import api
from graphspec.errors import InputError
from graphspec.graph.model import Model
from graphspec.interop.keras_export import export_keras
from graphspec.interop.keras_import import import_keras
from graphspec.interop.keras_layers import CONVERTERS, REFUSED
from graphspec.layers.registry import REGISTRY

REDUCED = {
    "vqa": dict(image_size=32, vocab=50, question_length=6, embedding_dim=8,
                question_units=8, answers=10),
    "video_qa": dict(image_size=32, frames=3, vocab=50, question_length=6,
                     embedding_dim=8, question_units=8, answers=10, video_units=8),
    "inception": dict(image_size=16), "residual": dict(image_size=16),
    "multi_io": dict(vocab=100, headline_length=7, embedding_dim=8),
    "siamese_lstm": dict(steps=5, features=6), "shared_vision": dict(image_size=9),
    "time_distributed": dict(input_dim=12, steps=4), "mlp": dict(input_dim=20),
}
EXPRESSION_TYPES = ("Lambda", "Merge")


def _roots(graph):
    """Models no other model calls: each one file holds it with its sub-models."""
    called = {id(n.layer) for m in graph.models.values() for n in m.nodes}
    called |= {id(layer.inner) for layer in graph.layers.values()
               if layer.TYPE == "TimeDistributed"}
    return [m for m in graph.models.values() if id(m) not in called]


def _cases():
    cases = []
    for path in sorted(SPECS.glob("*.yaml")):
        graph = api.load(path, params=REDUCED.get(path.stem), initialize=False)
        for model in _roots(graph):
            exportable = not any(layer.TYPE in EXPRESSION_TYPES for layer in model.layers())
            cases.append(pytest.param(path.stem, model.name, exportable,
                                      id=f"{path.stem}.{model.name}"))
    return cases


def _reachable(root) -> list:
    out, stack = [], [root]
    while stack:
        model = stack.pop()
        if model in out:
            continue
        out.append(model)
        for node in model.nodes:
            layer = node.layer
            if isinstance(layer, Model):
                stack.append(layer)
            elif layer.TYPE == "TimeDistributed" and isinstance(layer.inner, Model):
                stack.append(layer.inner)
    return out


def signature(root) -> dict:
    """Everything a compiled model is, tensor names aside (Keras has none): models,
    inputs, layers and configs, nodes numbered within the exported models, weights."""
    models = _reachable(root)
    names = {m.name for m in models}

    def index(layer, i):
        return sum(1 for n in layer.inbound_nodes[:i] if n.model in names)

    def ref(tensor):
        h = tensor.history
        return ("input", tensor.name) if h is None else \
            (h.layer.name, index(h.layer, h.node_index), h.tensor_index)

    def value(v):
        return v.name if isinstance(v, Model) or hasattr(v, "TYPE") else v

    sig = {"models": {}, "layers": {}, "weights": {}}
    for m in models:
        sig["models"][m.name] = (
            bool(m.trainable), [(t.name, t.shape, t.dtype) for t in m.inputs],
            sorted((n.layer.name, index(n.layer, n.node_index),
                    tuple(ref(t) for t in n.input_tensors)) for n in m.nodes),
            [ref(t) for t in m.outputs])
    for layer in root.layers():
        sig["layers"][layer.name] = (layer.TYPE, bool(layer.trainable),
                                     {k: value(v) for k, v in layer.config.items()})
        for name, var in layer.weights.items():
            sig["weights"][f"{layer.name}/{name}"] = var.data
    return sig


@pytest.mark.parametrize("spec, model_name, exportable", _cases())
def test_shipped_spec_exports_runs_in_keras_and_round_trips(
        keras, keras_dir, spec, model_name, exportable):
    graph = api.load(SPECS / f"{spec}.yaml", seed=0, params=REDUCED.get(spec))
    path = keras_dir / f"export_{spec}_{model_name}.keras"
    if not exportable:
        with pytest.raises(InputError, match="cannot be exported to Keras: it is a "
                                             "graphspec expression"):
            export_keras(graph, path, model_name)
        assert not path.exists()
        return
    assert export_keras(graph, path, model_name) == [(model_name, str(path))]
    model = graph.models[model_name]
    loaded = keras.saving.load_model(path)
    feeds = random_feeds(loaded, high=5)
    want = loaded.predict(feeds[0] if len(feeds) == 1 else feeds, verbose=0)
    got = model.predict(dict(zip(model.input_names, feeds)))
    compare_outputs(f"export {spec}.{model_name}", [got[n] for n in model.output_names],
                    want if isinstance(want, list) else [want])
    back = import_keras(path)
    again = api.loads(back.text, seed=1, name="round trip")
    again.set_weights(back.weights)
    before, after = signature(model), signature(again.models[model_name])
    assert before["models"] == after["models"]
    assert before["layers"] == after["layers"]
    assert before["weights"].keys() == after["weights"].keys()
    for key, array in before["weights"].items():
        np.testing.assert_array_equal(array, after["weights"][key], err_msg=key)


def test_every_layer_type_exports_or_says_why():
    for type_name in REGISTRY:
        assert (type_name in CONVERTERS) != (type_name in REFUSED), type_name
    assert set(REFUSED) == {"Lambda", "Merge"}


def _one_layer_spec(layer_yaml, shape="[4]"):
    return f"""
graphspec: 1
models:
  m:
    inputs:
      x: {{shape: {shape}}}
    calls:
      - {{layer: {layer_yaml}, in: x, out: y}}
    outputs: [y]
"""


@pytest.mark.parametrize("layer, message", [
    ("{type: Lambda, name: halve, expr: 'x * 0.5'}", "Lambda layer 'halve' cannot be "
                                                     "exported"),
    ("{type: Activation, name: soft, activation: softmax, axis: 1}",
     "Activation layer 'soft': axis=1 has no Keras equivalent"),
    ("{type: LSTM, name: rnn, units: 2, stateful: true}",
     "LSTM layer 'rnn' is stateful: Keras needs the batch size fixed"),
])
def test_export_refusals_name_the_layer_and_write_nothing(tmp_path, layer, message):
    shape = "[4, 3]" if "axis" in layer or "LSTM" in layer else "[4]"
    graph = api.loads(_one_layer_spec(layer, shape), seed=0)
    path = tmp_path / "m.keras"
    with pytest.raises(InputError, match=message):
        export_keras(graph, path)
    assert not path.exists()


def test_an_input_named_like_a_layer_is_refused(tmp_path):
    graph = api.loads(_one_layer_spec("{type: Dense, name: x, units: 2}"), seed=0)
    with pytest.raises(InputError, match="the name 'x' is both an input and a layer"):
        export_keras(graph, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_without_a_model_every_model_gets_its_file(keras, tmp_path):
    graph = api.load(SPECS / "began.yaml", seed=0)
    written = export_keras(graph, tmp_path / "began.keras")
    assert written == [(name, str(tmp_path / f"began.{name}.keras"))
                       for name in ("generator", "discriminator", "gan")]
    assert keras.saving.load_model(written[0][1]).name == "generator"


def test_without_a_model_nothing_is_written_if_one_is_refused(tmp_path):
    graph = api.load(SPECS / "vae.yaml", seed=0)
    with pytest.raises(InputError, match="Merge layer 'sampling'"):
        export_keras(graph, tmp_path / "vae.keras")
    assert list(tmp_path.iterdir()) == []


ZOO = """
graphspec: 1
layers:
  bi: {type: Bidirectional, merge_mode: ave,
       layer: {type: LSTM, name: inner, units: 3, return_sequences: true}}
  bn: {type: BatchNormalization, epsilon: 0.01}
models:
  encoder:
    inputs:
      steps: {shape: [6, 4]}
    calls:
      - {layer: {type: GRU, name: gru_after, units: 5, return_sequences: true}, in: steps, out: r1}
      - {layer: {type: GRU, name: gru_before, units: 5, reset_after: false, go_backwards: true, return_sequences: true}, in: steps, out: r2}
      - {layer: {type: SimpleRNN, name: rnn, units: 5, activation: relu, return_sequences: true}, in: steps, out: r3}
      - {layer: bi, in: steps, out: b}
      - {layer: {type: Subtract, name: sub}, in: [r1, r2], out: d}
      - {layer: {type: Multiply, name: mul}, in: [r3, r1], out: p}
      - {layer: {type: Average, name: avg}, in: [d, p], out: m}
      - {layer: {type: Minimum, name: mini}, in: [m, r2], out: lo}
      - {layer: {type: Maximum, name: maxi}, in: [lo, r3], out: hi}
      - {layer: {type: Concatenate, name: cat}, in: [hi, b], out: feats}
    outputs: [feats]
  zoo:
    inputs:
      seq: {shape: [6, 4]}
      tokens: {shape: [6], dtype: int32}
      img: {shape: [6, 6, 2]}
    calls:
      - {layer: {type: Embedding, name: emb, input_dim: 20, output_dim: 4}, in: tokens, out: e}
      - {layer: {type: Add, name: add_e}, in: [seq, e], out: s0}
      - {layer: {type: TimeDistributed, name: td, layer: {type: Dense, name: td_dense, units: 4}}, in: s0, out: s1}
      - {layer: encoder, in: s1, out: f0}
      - {layer: {type: LayerNormalization, name: ln, epsilon: 0.00001}, in: f0, out: f1}
      - {layer: {type: Conv1D, name: c1, filters: 4, kernel_size: 2, padding: causal, activation: tanh}, in: f1, out: f2}
      - {layer: {type: MaxPooling1D, name: p1}, in: f2, out: f3}
      - {layer: {type: Permute, name: perm, dims: [2, 1]}, in: f3, out: f4}
      - {layer: {type: Dropout, name: drop, rate: 0.3}, in: f4, out: f5}
      - {layer: {type: Flatten, name: flat}, in: f5, out: f6}
      - {layer: {type: Dense, name: vec_dense, units: 5, kernel_regularizer: {l2: 0.01}}, in: f6, out: v0}
      - {layer: {type: Activation, name: gelu, activation: gelu}, in: v0, out: vec}
      - {layer: {type: ZeroPadding2D, name: pad, padding: [[1, 0], [0, 2]]}, in: img, out: i1}
      - {layer: bn, in: i1, out: i2}
      - {layer: {type: Conv2D, name: c2, filters: 3, kernel_size: 2, dilation_rate: 2}, in: i2, out: i3}
      - {layer: {type: AveragePooling2D, name: ap, padding: same}, in: i3, out: i4}
      - {layer: {type: MaxPooling2D, name: mp, padding: same}, in: i4, out: i5}
      - {layer: {type: GlobalAveragePooling2D, name: gap}, in: i5, out: g1}
      - {layer: {type: GlobalMaxPooling2D, name: gmp}, in: i5, out: g2}
      - {layer: {type: Concatenate, name: pooled}, in: [g1, g2], out: g}
      - {layer: {type: Dense, name: g_dense, units: 5}, in: g, out: gv}
      - {layer: {type: Dot, name: cosine, axes: 1, normalize: true}, in: [vec, gv], out: dots}
      - {layer: {type: LSTM, name: lstm_state, units: 5, return_state: true}, in: s1, out: [o, h, c]}
      - {layer: {type: Add, name: hc}, in: [h, c], out: hc_sum}
      - {layer: {type: RepeatVector, name: rep, n: 3}, in: hc_sum, out: r}
      - {layer: {type: Reshape, name: flat_rep, target_shape: [15]}, in: r, out: rr}
      - {layer: {type: Concatenate, name: out}, in: [dots, rr, o], out: y}
    outputs: [y]
"""


def test_every_exportable_layer_type_runs_in_keras(keras, keras_dir):
    graph = api.loads(ZOO, seed=3, name="zoo.yaml")
    rng = np.random.default_rng(0)
    for name in ("moving_mean", "moving_variance", "beta"):    # non-trivial statistics
        var = graph.layers["bn"].weights[name]
        var.data = rng.uniform(0.5, 2, var.data.shape).astype("float32")
    types = {layer.TYPE for layer in graph.models["zoo"].layers()}
    assert types == BASE
    path = keras_dir / "zoo_export.keras"
    export_keras(graph, path, "zoo")
    loaded = keras.saving.load_model(path)
    feeds = random_feeds(loaded, high=20)
    model = graph.models["zoo"]
    compare_outputs("export layer zoo", [model.predict(dict(zip(model.input_names, feeds)))["y"]],
                    [loaded.predict(feeds, verbose=0)])
    back = import_keras(path)
    again = api.loads(back.text, seed=1, name="round trip")
    again.set_weights(back.weights)
    before, after = signature(model), signature(again.models["zoo"])
    assert before["models"] == after["models"] and before["layers"] == after["layers"]
    for key, array in before["weights"].items():
        np.testing.assert_array_equal(array, after["weights"][key], err_msg=key)
