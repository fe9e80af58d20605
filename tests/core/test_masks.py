"""Masks travel beside values (Keras' convention): who makes them, who passes them on,
who combines them, who drops them (with a located warning), and the losses and metrics
that count unmasked positions only. Keras (torch backend) is the reference."""
from __future__ import annotations

import os

import numpy as np
import pytest

import graphspec
from graphspec.autodiff import Variable
from graphspec.runtime import executor

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

HEAD = "graphspec: 1\nmodels:\n"


def build(body: str, seed: int = 0):
    return graphspec.loads(HEAD + body, seed=seed)


def masks_of(model, *arrays):
    values, masks = executor.run(model, list(arrays), executor.context(model), with_masks=True)
    return {t.name: masks[t.slot] for n in model.nodes for t in n.output_tensors}, values


TOKENS = np.array([[3, 1, 0, 0, 0], [0, 0, 2, 4, 1], [0, 0, 0, 0, 0], [5, 6, 7, 8, 9]])

EMB_DENSE_FLATTEN = """
  m:
    inputs: {tok: {shape: [5], dtype: int32}}
    calls:
      - {layer: {type: Embedding, input_dim: 10, output_dim: 4, mask_zero: true, name: emb},
         in: tok, out: e}
      - {layer: {type: Dense, units: 3, name: d}, in: e, out: h}
      - {layer: {type: Flatten, name: f}, in: h, out: y}
    outputs: [y]
"""


def test_embedding_mask_passes_through_dense_and_stops_at_flatten_with_a_warning():
    graph = build(EMB_DENSE_FLATTEN)
    model = graph.models["m"]
    masks, _ = masks_of(model, TOKENS)
    assert np.array_equal(masks["e"], TOKENS != 0) and np.array_equal(masks["h"], TOKENS != 0)
    assert masks["y"] is None
    assert [t.mask_source for n in model.nodes for t in n.output_tensors] == ["emb", "emb", None]
    [warning] = graph.warnings
    assert warning.line == 10 and "Flatten layer 'f' does not support masking" in warning.message
    assert "'emb'" in warning.message and warning.path == "models.m.calls[2]"


def test_unmasked_models_take_the_plain_loop():
    graph = build("""
  m:
    inputs: {tok: {shape: [5], dtype: int32}}
    calls:
      - {layer: {type: Embedding, input_dim: 10, output_dim: 4, name: emb}, in: tok, out: e}
    outputs: [e]
""")
    model = graph.models["m"]
    assert not model._plan()[3] and graph.warnings == []
    masks, _ = masks_of(model, TOKENS)
    assert masks == {"e": None}


def test_masking_layer_matches_keras_values_mask_and_gradient():
    x = np.random.default_rng(0).normal(size=(3, 4, 2)).astype(np.float32)
    x[0, 1] = -1.5
    x[2, :] = -1.5
    x[1, 3, 0] = -1.5                       # one feature equal is not enough
    x[1, 2] = [np.inf, -1.5]                 # inf is kept, not turned into NaN
    graph = build("""
  m:
    inputs: {x: {shape: [4, 2]}}
    calls:
      - {layer: {type: Masking, mask_value: -1.5, name: mk}, in: x, out: y}
    outputs: [y]
""")
    model = graph.models["m"]
    masks, values = masks_of(model, x)
    layer = keras.layers.Masking(mask_value=-1.5)
    expected = keras.ops.convert_to_numpy(layer(x))
    assert np.array_equal(values[model.outputs[0].slot].data, expected)
    assert np.array_equal(masks["y"], keras.ops.convert_to_numpy(layer.compute_mask(x)))
    # The gradient passes where the step is kept and is 0 where it is masked.
    from graphspec.autodiff import backward, recording
    from graphspec.layers.masking import masked_steps
    var = Variable(x.astype(np.float64), requires_grad=True)
    with recording(True):
        out = masked_steps(var, masks["y"])
        backward(out.sum() if hasattr(out, "sum") else out)
    assert np.array_equal(var.grad, np.broadcast_to(masks["y"][..., None], x.shape))


MERGES = """
  m:
    inputs: {a: {shape: [5], dtype: int32}, b: {shape: [5], dtype: int32}}
    calls:
      - {layer: {type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true, name: ea},
         in: a, out: xa}
      - {layer: {type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true, name: eb},
         in: b, out: xb}
      - {layer: {type: Embedding, input_dim: 10, output_dim: 3, name: ec}, in: b, out: xc}
      - {layer: {type: Add, name: both}, in: [xa, xb], out: s}
      - {layer: {type: Add, name: one}, in: [xa, xc], out: s1}
      - {layer: {type: Concatenate, name: cat}, in: [xa, xc], out: c}
      - {layer: {type: Concatenate, axis: 1, name: cat_time}, in: [xa, xb], out: ct}
      - {layer: {type: Dot, axes: 2, name: dot}, in: [xa, xb], out: dt}
    outputs: [s, s1, c, ct, dt]
"""


def test_merges_combine_masks_as_keras():
    graph = build(MERGES)
    model = graph.models["m"]
    a = TOKENS
    b = np.array([[0, 1, 1, 0, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    masks, values = masks_of(model, a, b)
    ma, mb = keras.ops.convert_to_tensor(a != 0), keras.ops.convert_to_tensor(b != 0)
    va, vc = (values[model.tensor(n).slot].data for n in ("xa", "xc"))

    def np_(t):
        return None if t is None else keras.ops.convert_to_numpy(t)
    assert np.array_equal(masks["s"], np_(keras.layers.Add().compute_mask([va, va], [ma, mb])))
    assert masks["s1"] is None and keras.layers.Add().compute_mask([va, vc], [ma, None]) is None
    assert np.array_equal(masks["c"], np_(keras.layers.Concatenate().compute_mask(
        [va, vc], [ma, None])))
    assert np.array_equal(masks["ct"], np_(keras.layers.Concatenate(axis=1).compute_mask(
        [va, va], [ma, mb])))
    assert masks["dt"] is None
    sources = {t.name: t.mask_source for n in model.nodes for t in n.output_tensors}
    assert sources == {"xa": "ea", "xb": "eb", "xc": None, "s": "ea+eb", "s1": None,
                       "c": "ea", "ct": "ea+eb", "dt": None}
    assert graph.warnings == []


def test_a_sub_model_passes_masks_in_and_out():
    graph = build("""
  inner:
    inputs: {h: {shape: [5, 4]}}
    calls:
      - {layer: {type: Dense, units: 2, name: d}, in: h, out: o}
    outputs: [o]
  outer:
    inputs: {tok: {shape: [5], dtype: int32}}
    calls:
      - {layer: {type: Embedding, input_dim: 10, output_dim: 4, mask_zero: true, name: emb},
         in: tok, out: e}
      - {layer: inner, in: e, out: y}
      - {layer: {type: Dense, units: 1, name: last}, in: y, out: z}
    outputs: [z]
""")
    model = graph.models["outer"]
    masks, _ = masks_of(model, TOKENS)
    assert np.array_equal(masks["y"], TOKENS != 0) and np.array_equal(masks["z"], TOKENS != 0)
    assert model.tensor("z").mask_source == "emb"
    assert graph.models["inner"].tensor("o").mask_source is None   # on its own: no mask


TAGGER = """
  tagger:
    inputs: {tok: {shape: [6], dtype: int32}}
    calls:
      - {layer: {type: Embedding, input_dim: 10, output_dim: 4, mask_zero: true, name: emb},
         in: tok, out: e}
      - {layer: {type: Dense, units: 3, activation: softmax, name: d}, in: e, out: y}
    outputs: [y]
training:
  default:
    model: tagger
    loss: sparse_categorical_crossentropy
    metrics: [accuracy]
    optimizer: {type: sgd, learning_rate: 0.5}
"""


def _tagger_pair():
    graph = build(TAGGER, seed=1)
    graph.layers["emb"].weights["embeddings"].data[0] = 2.0   # padding rows: other losses
    inp = keras.Input((6,), dtype="int32")
    emb = keras.layers.Embedding(10, 4, mask_zero=True)
    dense = keras.layers.Dense(3, activation="softmax")
    km = keras.Model(inp, dense(emb(inp)))
    emb.set_weights([graph.layers["emb"].weights["embeddings"].data])
    dense.set_weights([graph.layers["d"].weights["kernel"].data,
                       graph.layers["d"].weights["bias"].data])
    km.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
               optimizer=keras.optimizers.SGD(0.5))
    return graph, km


def test_losses_and_metrics_count_unmasked_positions_only_as_keras():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 10, (5, 6))
    x[0, 3:], x[1, :2], x[2, :] = 0, 0, 0       # right, left and fully padded rows
    y = rng.integers(0, 3, (5, 6))
    graph, km = _tagger_pair()
    model = graph.models["tagger"]
    ours = model.evaluate(x, y, batch_size=5)
    theirs = km.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], rel=1e-6)
    probs = model.predict(x)["y"]
    picked = -np.log(np.take_along_axis(probs, y[..., None], axis=-1)[..., 0])
    assert ours["loss"] == pytest.approx(picked[x != 0].mean(), rel=1e-5)
    assert abs(picked.mean() - ours["loss"]) > 1e-2             # the mask matters here
    for _ in range(3):                                          # three SGD steps
        model.train_on_batch(x, y)
        km.train_on_batch(x, y)
    np.testing.assert_allclose(graph.layers["d"].weights["kernel"].data,
                               km.layers[2].get_weights()[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(graph.layers["emb"].weights["embeddings"].data,
                               km.layers[1].get_weights()[0], rtol=1e-4, atol=1e-6)


def test_a_custom_loss_on_a_masked_output_is_refused():
    graph = build(TAGGER.replace("loss: sparse_categorical_crossentropy",
                                 "loss: {expr: 'mean(square(y_pred), axis=[1, 2])'}"), seed=1)
    with pytest.raises(Exception, match="cannot leave masked steps out"):
        graph.models["tagger"].train_on_batch(TOKENS[:, :1].repeat(6, 1) % 10,
                                              np.zeros((4, 6, 3), np.float32))


def test_validate_and_inspect_nodes_show_masks(tmp_path):
    from click.testing import CliRunner

    from graphspec.cli import main
    spec = tmp_path / "m.yaml"
    spec.write_text(HEAD + EMB_DENSE_FLATTEN)
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 0
    assert f"warning: {spec}:10:9: models.m.calls[2]: Flatten layer 'f'" in result.output
    np.save(tmp_path / "tok.npy", TOKENS.astype(np.int32))
    result = CliRunner().invoke(main, ["inspect-nodes", str(spec), "--seed", "0",
                                       "--input", f"tok={tmp_path / 'tok.npy'}"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if line.startswith("layer"))
    assert "mask from" in header
    dense_row = next(line for line in lines if line.startswith("d "))
    assert " emb " in dense_row and "(50% masked)" in dense_row
