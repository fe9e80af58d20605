"""Weight compatibility and migration: can the new spec start from the old checkpoint?"""
import numpy as np
import pytest
from review_util import edited, shipped

from graphspec import api
from graphspec.errors import InputError
from graphspec.review.diff import diff_specs

SMALL = {"input_dim": 8}
RENAMED_WITH_HEAD = (
    ("dense_2: {", "hidden_b: {"), ("layer: dense_2,", "layer: hidden_b,"),
    ("  predictions: {", "  aux: {type: Dense, units: 3}\n  predictions: {"),
    ("    outputs: [digit]", "      - {layer: aux, in: hidden_2, out: aux_out}\n"
                             "    outputs: [digit, aux_out]"))


@pytest.fixture
def old_weights(tmp_path):
    graph = api.load(shipped("mlp.yaml"), seed=1, params=SMALL)
    path = tmp_path / "old.npz"
    graph.save_weights(path, extra={"optimizer/step": np.array(7)})
    return graph, path


def test_report_follows_renames_and_lists_new_weights(tmp_path, old_weights):
    _, weights = old_weights
    new = edited(tmp_path, "mlp.yaml", *RENAMED_WITH_HEAD)
    report = diff_specs(shipped("mlp.yaml"), new, params_old=SMALL, params_new=SMALL,
                        weights=weights).weights
    assert {(w["key"], w["new_key"]) for w in report["loads"]} == {
        ("dense_1/kernel", "dense_1/kernel"), ("dense_1/bias", "dense_1/bias"),
        ("dense_2/kernel", "hidden_b/kernel"), ("dense_2/bias", "hidden_b/bias"),
        ("predictions/kernel", "predictions/kernel"), ("predictions/bias", "predictions/bias")}
    assert report["new"] == [{"key": "aux/kernel", "shape": "(64, 3)"},
                             {"key": "aux/bias", "shape": "(3,)"}]
    assert report["reshaped"] == report["dropped"] == report["unusable"] == []
    assert report["not_carried"] == ["optimizer/step"]
    assert report["old_spec_mismatch"] == []
    assert report["fine_tune_ready"] is False


def test_migrated_weights_load_strictly_and_reproduce_unchanged_outputs(tmp_path, old_weights):
    old_graph, weights = old_weights
    new = edited(tmp_path, "mlp.yaml", *RENAMED_WITH_HEAD)
    diff = diff_specs(shipped("mlp.yaml"), new, params_old=SMALL, params_new=SMALL,
                      weights=weights)
    out = tmp_path / "new.npz"
    assert diff.migrate(out, seed=3) == {"copied": 6, "initialised": 2}
    new_graph = api.load(new, seed=99, params=SMALL)
    new_graph.load_weights(out, strict=True)
    x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    before = old_graph.models["mlp"].predict(x)["digit"]
    after = new_graph.models["mlp"].predict(x)
    assert np.array_equal(before, after["digit"])          # bit for bit
    assert after["aux_out"].shape == (5, 3)
    # the rest is a seeded fresh initialisation: same seed, same file
    again = tmp_path / "again.npz"
    diff_specs(shipped("mlp.yaml"), new, params_old=SMALL, params_new=SMALL,
               weights=weights).migrate(again, seed=3)
    first, second = np.load(out), np.load(again)
    assert sorted(first.files) == sorted(second.files)
    assert all(np.array_equal(first[k], second[k]) for k in first.files)


def test_changed_shape_is_reinitialised_and_reported(tmp_path, old_weights):
    _, weights = old_weights
    new = edited(tmp_path, "mlp.yaml", ("units: 10,", "units: 12,"))
    diff = diff_specs(shipped("mlp.yaml"), new, params_old=SMALL, params_new=SMALL,
                      weights=weights)
    assert diff.weights["reshaped"] == [
        {"key": "predictions/kernel", "new_key": "predictions/kernel", "old": "(64, 10)",
         "new": "(64, 12)"},
        {"key": "predictions/bias", "new_key": "predictions/bias", "old": "(10,)",
         "new": "(12,)"}]
    assert diff.weights["new"] == []
    out = tmp_path / "new.npz"
    assert diff.migrate(out) == {"copied": 4, "initialised": 2}
    api.load(new, params=SMALL).load_weights(out, strict=True)
    assert "changes shape: predictions/kernel  (64, 10) → (64, 12) (initialised)" \
        in diff.to_text()


def test_removed_layer_weights_are_dropped_and_bad_arrays_not_copied(tmp_path):
    graph = api.load(shipped("mlp.yaml"), seed=0, params=SMALL)
    arrays = {k: v.data for k, v in graph.weights().items()}
    arrays["dense_1/bias"] = np.full(64, np.nan, dtype="float32")
    arrays["ghost/kernel"] = np.zeros((2, 2), dtype="float32")
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    new = edited(tmp_path, "mlp.yaml", ("  dense_2: {type: Dense, units: 64, activation: relu}\n",
                                        ""),
                 ("{layer: dense_2, in: hidden_1, out: hidden_2}",
                  "{layer: dense_1, in: hidden_1, out: hidden_2}"),
                 ("input_dim: 784", "input_dim: 64"))
    report = diff_specs(shipped("mlp.yaml"), new, params_old=SMALL, weights=path).weights
    assert {w["key"] for w in report["dropped"]} == {"dense_2/kernel", "dense_2/bias",
                                                     "ghost/kernel"}
    assert report["unusable"] == [{"key": "dense_1/bias", "problem": "contains NaN or Inf"}]
    assert report["old_spec_mismatch"] == ["'ghost/kernel' is not a weight of the old spec"]


def test_migrate_without_weights_is_refused(tmp_path):
    with pytest.raises(InputError, match="--weights"):
        diff_specs(shipped("mlp.yaml"), shipped("mlp.yaml")).migrate(tmp_path / "x.npz")


def test_pickled_weights_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"dense_1/kernel": np.array([object()], dtype=object)})
    with pytest.raises(InputError, match="pickled"):
        diff_specs(shipped("mlp.yaml"), shipped("mlp.yaml"), weights=path)


def test_text_lists_a_renamed_weight_once_not_also_as_unchanged(tmp_path, old_weights):
    _, weights = old_weights
    new = edited(tmp_path, "mlp.yaml", *RENAMED_WITH_HEAD)
    text = diff_specs(shipped("mlp.yaml"), new, params_old=SMALL, params_new=SMALL,
                      weights=weights).to_text()
    unchanged = next(line for line in text.splitlines() if "loads unchanged" in line)
    assert "4 weight(s)" in unchanged and "hidden_b" not in unchanged
    assert text.count("loads renamed") == 2
