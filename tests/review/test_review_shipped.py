"""Invariants over every shipped spec: a spec against itself is no change, and a copy
with every declared layer renamed is renames only (the rename heuristic at scale)."""
import pytest
import yaml
from specs_util import SPECS

from graphspec.review.diff import diff_specs

ALL = sorted(p.name for p in SPECS.glob("*.yaml"))


def _renamed_copy(tmp_path, name):
    data = yaml.safe_load((SPECS / name).read_text())
    names = {old: f"r_{old}" for old in data.get("layers") or {}}

    def ref(value):
        return names.get(value, value) if isinstance(value, str) else value
    data["layers"] = {names[k]: {a: ref(v) if a == "layer" else v for a, v in spec.items()}
                      for k, spec in (data.get("layers") or {}).items()}
    for model in data["models"].values():
        for call in model["calls"]:
            call["layer"] = ref(call["layer"])
    for job in (data.get("training") or {}).values():
        if "freeze" in job:
            job["freeze"] = [ref(n) for n in job["freeze"]]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, names


@pytest.mark.parametrize("name", ALL)
def test_a_spec_against_itself_is_no_change(name):
    diff = diff_specs(SPECS / name, SPECS / name)
    assert not diff.has_model_changes and diff.params == []
    assert "no model change" in diff.to_markdown()


@pytest.mark.parametrize("name", ALL)
def test_every_declared_layer_renamed_is_renames_only(tmp_path, name):
    path, names = _renamed_copy(tmp_path, name)
    diff = diff_specs(SPECS / name, path)
    renamed = {r["old"]: r["new"] for r in diff.layers["renamed"]}
    assert {o: n for o, n in renamed.items() if o in names} == names
    assert diff.layers["added"] == diff.layers["removed"] == diff.layers["config"] == []
    assert diff.models == [] and diff.training == []


SMALL = {"mlp.yaml": {"input_dim": 16}, "residual.yaml": {"image_size": 8},
         "inception.yaml": {"image_size": 8}, "shared_vision.yaml": {"image_size": 7},
         "siamese_lstm.yaml": {"steps": 4, "features": 8},
         "time_distributed.yaml": {"input_dim": 16, "steps": 3},
         "container_trainable.yaml": {}, "vae.yaml": {}, "began.yaml": {}, "vin.yaml": {},
         "node_shapes.yaml": {}, "lambda_ops.yaml": {}, "shared_entry.yaml": {}}


def _feed(model, rng):
    return {t.name: (rng.integers(0, 2, size=(3,) + t.shape[1:]) if "int" in t.dtype else
                     rng.normal(size=(3,) + t.shape[1:])).astype(t.dtype) for t in model.inputs}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_migrating_through_renames_reproduces_every_output_bit_for_bit(tmp_path, name):
    import numpy as np
    from graphspec import api
    params = SMALL[name]
    path, _ = _renamed_copy(tmp_path, name)
    old = api.load(SPECS / name, seed=5, params=params)
    old.save_weights(tmp_path / "old.npz")
    diff = diff_specs(SPECS / name, path, params_old=params, params_new=params,
                      weights=tmp_path / "old.npz")
    assert diff.weights["fine_tune_ready"] and diff.weights["new"] == []
    written = diff.migrate(tmp_path / "new.npz", seed=9)
    assert written["initialised"] == 0
    new = api.load(path, seed=123, params=params)
    new.load_weights(tmp_path / "new.npz", strict=True)
    for model_name, model in old.models.items():
        feed = _feed(model, np.random.default_rng(0))
        before = model.predict(feed, seed=1)
        after = new.models[model_name].predict(feed, seed=1)
        for key in before:
            assert np.array_equal(before[key], after[key]), (model_name, key)
