"""spec -> .keras: Keras 3 loads every exportable shipped model and predicts what
graphspec predicts; importing the file back gives the same compiled graph."""
import numpy as np
import pytest
from conftest import compare_outputs, random_feeds
from specs_util import SPECS

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
    assert sorted(REFUSED) == ["Lambda", "Merge"]


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
    ("{type: Embedding, name: emb, input_dim: 5, output_dim: 2, mask_zero: true}",
     "mask_zero=true"),
])
def test_export_refusals_name_the_layer_and_write_nothing(tmp_path, layer, message):
    graph = api.loads(_one_layer_spec(layer, "[4, 3]" if "axis" in layer else "[4]"),
                      seed=0)
    path = tmp_path / "m.keras"
    with pytest.raises(InputError, match=message):
        export_keras(graph, path)
    assert not path.exists()


def test_export_needs_a_model_choice_when_the_spec_has_several(tmp_path):
    graph = api.load(SPECS / "began.yaml", seed=0)
    with pytest.raises(InputError, match="choose one with --model"):
        export_keras(graph, tmp_path / "m.keras")
