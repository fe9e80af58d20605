"""One array check (graphspec/io/arrays.py) and one executor (graphspec/runtime)."""
import numpy as np
import pytest

import graphspec
from graphspec.errors import InputError
from graphspec.io.arrays import check_weight
from graphspec.runtime import executor

EMBED = """
graphspec: 1
layers:
  emb: {type: Embedding, input_dim: 10, output_dim: 2}
models:
  m:
    inputs: {ids: {shape: [3], dtype: DTYPE}}
    calls: [{layer: emb, in: ids, out: y}]
    outputs: [y]
"""

MLP = """
graphspec: 1
layers:
  a: {type: Dense, units: 3, activation: relu}
  b: {type: Dense, units: 2}
models:
  m:
    inputs: {x: {shape: [4]}}
    calls:
      - {layer: a, in: x, out: h}
      - {layer: b, in: h, out: y}
    outputs: [y]
training:
  job: {model: m, loss: mse, optimizer: sgd}
"""


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_embedding_index_beyond_int32_is_refused_not_wrapped(dtype):
    model = graphspec.loads(EMBED.replace("DTYPE", dtype), seed=0).models["m"]
    ids = np.array([[1, 2, 3], [4, 2 ** 32 + 5, 6]], np.int64)
    with pytest.raises(InputError, match=r"input 'ids'.*holds 4294967301 at row 1, "
                                         r"position \(1, 1\).*0\.\.9.*input_dim=10"):
        model.predict(ids)


def test_embedding_float_index_1e20_is_refused_with_its_value():
    model = graphspec.loads(EMBED.replace("DTYPE", "int32"), seed=0).models["m"]
    with pytest.raises(InputError, match=r"holds 1e\+20 at row 0, position \(0, 2\)"):
        model.predict(np.array([[1.0, 2.0, 1e20]]))
    with pytest.raises(InputError, match=r"holds 2\.5 at row 0.*integer indices"):
        model.predict(np.array([[1.0, 2.5, 3.0]]))


def test_embedding_on_a_float_input_reports_the_real_value():
    model = graphspec.loads(EMBED.replace("DTYPE", "float32"), seed=0).models["m"]
    with pytest.raises(InputError, match=r"index 1e\+20 is out of range"):
        model.predict(np.array([[1.0, 2.0, 1e20]]))


def test_float64_overflowing_float32_is_refused_naming_array_and_position():
    model = graphspec.loads(MLP, seed=0).models["m"]
    x = np.zeros((3, 4))
    x[2, 1] = 1e300
    with pytest.raises(InputError, match=r"input 'x'.*NaN or Inf after the cast to float32 "
                                         r"\(1e\+300 overflows it\) at row 2, position \(2, 1\)"):
        model.predict(x)
    # batches report rows of the whole array
    with pytest.raises(InputError, match=r"at row 2, position \(2, 1\)"):
        model.predict(x, batch_size=2)


def test_weight_overflowing_float32_is_refused():
    graph = graphspec.loads(MLP, seed=0)
    arrays = {k: v.data.astype(np.float64) for k, v in graph.weights().items()}
    arrays["a/kernel"][1, 2] = 1e300
    with pytest.raises(InputError, match=r"'a/kernel' contains NaN or Inf after the cast.*"
                                         r"position \(1, 2\)"):
        graph.set_weights(arrays, source="w.npz")
    assert check_weight("a/kernel", np.zeros((4, 3)), (4, 3), "float32") is None


def test_weights_mismatch_lists_names_and_suggests_inspect_nodes():
    graph = graphspec.loads(MLP, seed=0)
    arrays = {"a/kernel": np.zeros((5, 3), np.float32), "stray": np.zeros(2)}
    with pytest.raises(InputError) as info:
        graph.set_weights(arrays, source="w.npz")
    message = str(info.value)
    assert "'a/kernel' has shape (5, 3), the spec needs (4, 3)" in message
    assert "missing 'a/bias' (3,)" in message
    assert "unexpected 'stray'" in message
    assert "graphspec inspect-nodes SPEC --weights w.npz" in message


@pytest.mark.parametrize("target,what", [
    (np.ones((4, 2)) + 1j, "complex numbers"),
    (np.zeros((4, 2), "datetime64[s]"), "datetimes"),
    (np.zeros((4, 2), "timedelta64[s]"), "time deltas"),
])
def test_non_real_targets_are_refused(target, what):
    model = graphspec.loads(MLP, seed=0).models["m"]
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(InputError, match=f"target 'y' must be numeric.*{what}"):
        model.fit(x, target, epochs=1, verbose=False, seed=0)
    with pytest.raises(InputError, match=f"target 'y' must be numeric.*{what}"):
        model.evaluate(x, target)


def _nan_model():
    graph = graphspec.loads(MLP, seed=0)
    graph.weights()["b/kernel"].data[0, 0] = np.inf
    return graph.models["m"]


def test_nonfinite_outputs_name_the_first_node_unless_allowed():
    model = _nan_model()
    x = np.ones((2, 4), np.float32)
    with pytest.raises(InputError, match=r"output 'y' holds NaN or Inf.*layer 'b' \(Dense, "
                                         r"node 0\) -> tensor 'y'.*inspect-nodes"):
        model.predict(x)
    out = model.predict(x, allow_nonfinite=True)
    assert not np.isfinite(out["y"]).all()
    with pytest.raises(InputError, match="layer 'b'"):
        model.evaluate(x, np.zeros((2, 2)))
    assert "loss" in model.evaluate(x, np.zeros((2, 2)), allow_nonfinite=True)


def test_predict_batches_streams_memmapped_rows(tmp_path):
    model = graphspec.loads(MLP, seed=0).models["m"]
    x = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    batches = list(executor.predict_batches(model, {"x": mapped}, 4))
    assert [b["y"].shape[0] for b in batches] == [4, 4, 2]
    whole = model.predict(x)["y"]
    np.testing.assert_allclose(np.concatenate([b["y"] for b in batches]), whole, rtol=1e-6)
    bad = x.copy()
    bad[7, 0] = np.nan
    with pytest.raises(InputError, match=r"at row 107, position \(107, 0\)"):
        list(executor.predict_batches(model, {"x": bad}, 4, offset=100))


def test_node_statistics_refuses_zero_rows_and_shows_every_tensor():
    model = graphspec.loads(MLP, seed=0).models["m"]
    with pytest.raises(InputError, match="0 rows"):
        executor.node_statistics(model, {"x": np.zeros((0, 4), np.float32)})
    stats = executor.node_statistics(model, {"x": np.ones((3, 4), np.float32)}, seed=0)
    assert len(stats) == 3 and all(s["shape"][0] == 3 for s in stats.values())
