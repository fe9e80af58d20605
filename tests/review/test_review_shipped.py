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
