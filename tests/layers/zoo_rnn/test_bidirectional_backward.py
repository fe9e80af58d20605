"""Bidirectional ``backward_layer`` (Keras' separate backward direction) and Keras'
refusals: the two directions must differ in go_backwards (so a wrapped layer that
already has go_backwards: true needs a backward_layer) and agree in return_sequences
and return_state."""
import os

# Keras picks its backend when first imported: torch, the reference here
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec import api
from graphspec.autodiff import Variable
from graphspec.errors import SpecErrors
from graphspec.layers.base import CallContext
from graphspec.layers.bidirectional import Bidirectional
from graphspec.layers.gru import GRU
from graphspec.layers.lstm import LSTM

KERAS_GO_BACKWARDS = ("Forward layer and backward layer should have different "
                      "`go_backwards` value. Received: forward_layer.go_backwards True, "
                      "backward_layer.go_backwards=True")


def spec(layer, backward=None, merge="concat"):
    b = "" if backward is None else f", backward_layer: {backward}"
    return f"""\
graphspec: 1
layers:
  bi: {{type: Bidirectional, layer: {layer}, merge_mode: {merge}{b}}}
models:
  m:
    inputs: {{x: {{shape: [5, 3]}}}}
    calls:
      - {{layer: bi, in: x, out: y}}
    outputs: [y]
"""


def test_wrapped_layer_going_backwards_is_refused_as_keras_refuses_it():
    with pytest.raises(SpecErrors) as err:
        api.loads(spec("{type: LSTM, name: l, units: 4, go_backwards: true}"))
    assert KERAS_GO_BACKWARDS in str(err.value)
    keras = pytest.importorskip("keras")
    with pytest.raises(ValueError, match="should have different `go_backwards` value"):
        keras.layers.Bidirectional(keras.layers.LSTM(4, go_backwards=True))


def test_backward_layer_with_the_same_direction_is_refused():
    with pytest.raises(SpecErrors, match="should have different `go_backwards` value"):
        api.loads(spec("{type: LSTM, name: l, units: 4}", "{type: GRU, name: b, units: 2}"))


def test_directions_must_agree_in_return_sequences():
    with pytest.raises(SpecErrors, match='same value for attribute "return_sequences"'):
        api.loads(spec("{type: LSTM, name: l, units: 4, return_sequences: true}",
                       "{type: GRU, name: b, units: 2, go_backwards: true}"))


def test_backward_layer_must_be_recurrent():
    with pytest.raises(SpecErrors):
        api.loads(spec("{type: LSTM, name: l, units: 4}", "{type: Dense, units: 2}"))


def test_sum_needs_equal_widths():
    with pytest.raises(SpecErrors, match="needs both directions of the same shape"):
        api.loads(spec("{type: LSTM, name: l, units: 4}",
                       "{type: GRU, name: b, units: 2, go_backwards: true}", merge="sum"))


def test_backward_layer_shapes_and_weights():
    graph = api.loads(spec("{type: LSTM, name: l, units: 4, return_sequences: true}",
                           "{type: GRU, name: b, units: 2, go_backwards: true, "
                           "return_sequences: true}"), seed=0)
    w = graph.weights()
    assert w["l/kernel"].data.shape == (3, 16) and w["b/kernel"].data.shape == (3, 6)
    out = graph.model("m").predict({"x": np.ones((2, 5, 3), np.float32)})["y"]
    assert out.shape == (2, 5, 6)


def test_a_going_backwards_forward_layer_with_a_forward_backward_layer_runs():
    graph = api.loads(spec("{type: SimpleRNN, name: l, units: 4, go_backwards: true}",
                           "{type: SimpleRNN, name: b, units: 3}"), seed=0)
    assert graph.model("m").predict({"x": np.ones((2, 5, 3), np.float32)})["y"].shape == (2, 7)


@pytest.mark.parametrize("merge", ["concat", None])
def test_finite_differences_with_a_backward_layer(merge):
    fw = LSTM("l", {"units": 3, "return_sequences": True})
    bi = Bidirectional("bi", {"layer": fw, "merge_mode": merge, "backward_layer": {
        "type": "GRU", "name": "b", "units": 2, "go_backwards": True,
        "return_sequences": True, "reset_after": False}})
    bi.register_weights([(None, 4, 3)])
    rng = np.random.default_rng(0)
    pairs = []
    for lyr in bi.sublayers():
        for name, s in lyr.weight_shapes.items():
            lyr.weights[name] = Variable(rng.uniform(-0.6, 0.6, s.shape))
            pairs.append((lyr, name))

    def fn(x, *ws):
        for (lyr, name), wv in zip(pairs, ws):
            lyr.weights[name] = wv
        return bi.forward([x], CallContext())
    x = rng.standard_normal((2, 4, 3))
    check_gradients(fn, x, *[lyr.weights[n].data.copy() for lyr, n in pairs])


def test_keras_backward_layer_imports_and_agrees(tmp_path):
    # same units both ways: Keras' compute_output_shape doubles the forward width, so
    # a Keras model whose directions differ in width records wrong shapes downstream
    keras = pytest.importorskip("keras")
    from graphspec.interop.keras_import import import_keras
    inp = keras.Input((6, 3))
    bi = keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True),
        backward_layer=keras.layers.GRU(4, go_backwards=True, return_sequences=True,
                                        name="back_gru", activation="relu"))
    y = bi(inp)
    y2 = keras.layers.Bidirectional(keras.layers.SimpleRNN(2))(y)   # the mirrored default
    model = keras.Model(inp, [y, y2])
    path = tmp_path / "bi.keras"
    model.save(path)
    result = import_keras(str(path))
    layers = [s for s in result.spec["layers"].values() if s["type"] == "Bidirectional"]
    assert sorted("backward_layer" in s for s in layers) == [False, True]
    graph = api.loads(result.text, seed=0)
    graph.set_weights(result.weights)
    top = graph.model(model.name)
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype("float32")
    want = model.predict(x, verbose=0)
    got = top.predict({top.input_names[0]: x})
    for w, name in zip(want, top.output_names):
        np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6)


def test_backward_layer_exports_to_keras(tmp_path):
    keras = pytest.importorskip("keras")
    from graphspec.interop.keras_export import export_keras
    graph = api.loads(spec("{type: LSTM, name: l, units: 4, return_sequences: true}",
                           "{type: GRU, name: b, units: 2, go_backwards: true, "
                           "return_sequences: true}"), seed=0)
    path = tmp_path / "bi.keras"
    export_keras(graph, path, "m")
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               graph.model("m").predict({"x": x})["y"], rtol=1e-5, atol=1e-6)
    assert loaded.layers[-1].backward_layer.units == 2


def test_backward_layer_keys_match_the_schemas_common_layer_keys():
    """bidirectional.py keeps its own copy (importing spec/ from layers/ is a cycle)."""
    from graphspec.layers import bidirectional
    from graphspec.spec.schema import COMMON_LAYER_KEYS
    assert bidirectional._LAYER_KEYS == COMMON_LAYER_KEYS
