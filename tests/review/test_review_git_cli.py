"""REV:PATH read from git (a scratch repository with two commits) and the diff command."""
import numpy as np
import pytest
from click.testing import CliRunner
from review_util import edited, scratch_repo, shipped

from graphspec import api
from graphspec.cli.review_commands import diff as diff_command
from graphspec.errors import InputError, SpecErrors
from graphspec.review.diff import diff_specs
from graphspec.review.source import split_source

MLP_TEXT = open(shipped("mlp.yaml")).read()
WIDER = MLP_TEXT.replace("dense_1: {type: Dense, units: 64,", "dense_1: {type: Dense, units: 96,")


@pytest.fixture
def repo(tmp_path):
    return scratch_repo(tmp_path, {"specs/mlp.yaml": MLP_TEXT, "README": "x"},
                        {"specs/mlp.yaml": WIDER})


def test_revision_against_working_tree_from_another_directory(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)        # git runs in the repository that holds the file
    path = repo / "specs" / "mlp.yaml"
    diff = diff_specs(f"HEAD~1:{path}", str(path))
    assert diff.old == f"HEAD~1:{path}"
    assert diff.layers["config"] == [{"layer": "dense_1", "arg": "units", "old": 64,
                                      "new": 96}]
    assert not diff_specs(f"HEAD:{path}", str(path)).has_model_changes


def test_relative_path_and_two_revisions(repo, monkeypatch):
    monkeypatch.chdir(repo / "specs")
    diff = diff_specs("HEAD~1:mlp.yaml", "main:mlp.yaml")
    assert [c["new"] for c in diff.layers["config"]] == [96]


def test_file_deleted_from_the_working_tree_is_still_read(repo, monkeypatch):
    (repo / "specs" / "mlp.yaml").unlink()
    (repo / "specs").rmdir()
    monkeypatch.chdir(repo)
    diff = diff_specs("HEAD~1:specs/mlp.yaml", "HEAD:specs/mlp.yaml")
    assert diff.has_model_changes


def test_bad_revisions_are_one_line_errors(repo, monkeypatch):
    monkeypatch.chdir(repo)
    with pytest.raises(InputError, match="starts with '-'"):
        diff_specs("--output=/tmp/x:specs/mlp.yaml", "specs/mlp.yaml")
    with pytest.raises(InputError) as caught:
        diff_specs("nosuchrev:specs/mlp.yaml", "specs/mlp.yaml")
    assert "git show failed" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(InputError, match="git show failed"):
        diff_specs("HEAD~1:specs/missing.yaml", "specs/mlp.yaml")


def test_invalid_spec_at_a_revision_is_located_there(tmp_path, monkeypatch):
    broken = MLP_TEXT.replace("layer: dense_2,", "layer: dense_9,")
    repo = scratch_repo(tmp_path, {"m.yaml": broken}, {"m.yaml": MLP_TEXT})
    monkeypatch.chdir(repo)
    with pytest.raises(SpecErrors, match=r"^HEAD~1:m.yaml:\d+:\d+: models.mlp.calls\[1\]"):
        diff_specs("HEAD~1:m.yaml", "m.yaml")


def test_split_source_prefers_an_existing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:name.yaml").write_text("x")
    assert split_source("odd:name.yaml") == (None, "odd:name.yaml")
    assert split_source("HEAD:a.yaml") == ("HEAD", "a.yaml")
    with pytest.raises(InputError, match="REV:PATH"):
        split_source("HEAD:")


# -- the command ------------------------------------------------------------------------
def run(*args):
    return CliRunner().invoke(diff_command, [str(a) for a in args])


def test_exit_codes_and_formats(tmp_path):
    same = run(shipped("mlp.yaml"), shipped("mlp.yaml"))
    assert same.exit_code == 0 and "no model change" in same.output
    new = edited(tmp_path, "mlp.yaml", ("units: 10,", "units: 12,"))
    for fmt, marker in (("text", "config: predictions.units  10 → 12"),
                        ("json", '"changed": true'),
                        ("markdown", "| **layers** | config | `predictions.units` | 10 | 12 |")):
        result = run(shipped("mlp.yaml"), new, "--format", fmt)
        assert result.exit_code == 1 and marker in result.output, result.output
    ripple = run(shipped("mlp.yaml"), shipped("mlp.yaml"), "--set-new", "input_dim=64")
    assert ripple.exit_code == 1 and "input: mlp.pixels  (None, 784) float32 → " \
        "(None, 64) float32" in ripple.output


def test_usage_and_invalid_specs_exit_2_with_one_line(tmp_path):
    bad = edited(tmp_path, "mlp.yaml", ("layer: dense_2,", "layer: dense_9,"))
    for args in ((bad, shipped("mlp.yaml")), (tmp_path / "nope.yaml", shipped("mlp.yaml")),
                 (shipped("mlp.yaml"), shipped("mlp.yaml"), "--migrate"),
                 (shipped("mlp.yaml"), shipped("mlp.yaml"), "-o", tmp_path / "x.npz"),
                 (shipped("mlp.yaml"), shipped("mlp.yaml"), "--set-new", "nope=1"),
                 (shipped("mlp.yaml"), shipped("mlp.yaml"), "--model", "nope")):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    located = run(bad, shipped("mlp.yaml"))
    assert located.output.strip().count("\n") == 0 and "did you mean 'dense_2'" in located.output


def test_migrate_writes_a_strictly_loadable_file_and_guards_inputs(tmp_path):
    old = api.load(shipped("mlp.yaml"), seed=0, params={"input_dim": 8})
    weights = tmp_path / "old.npz"
    old.save_weights(weights)
    new = edited(tmp_path, "mlp.yaml", ("units: 10,", "units: 12,"))
    out = tmp_path / "new.npz"
    common = ("--set", "input_dim=8", "--weights", weights, "--migrate")
    result = run(shipped("mlp.yaml"), new, *common, "-o", out)
    assert result.exit_code == 1, result.output
    assert "wrote" in result.output and "4 weight(s) copied, 2 initialised" in result.output
    graph = api.load(new, params={"input_dim": 8})
    graph.load_weights(out, strict=True)
    assert np.array_equal(graph.weights()["dense_1/kernel"].data,
                          old.weights()["dense_1/kernel"].data)
    for clash in (weights, new):
        refused = run(shipped("mlp.yaml"), new, *common, "-o", clash)
        assert refused.exit_code == 2 and "name the same file" in refused.output
    assert np.load(weights)["dense_1/kernel"].shape == (8, 64)      # untouched


def test_empty_paths_are_refused_not_ignored(tmp_path):
    spec = shipped("mlp.yaml")
    for args, message in (((spec, spec, "--weights", ""), "--weights: empty path"),
                          ((spec, spec, "--weights", spec, "--migrate", "-o", ""),
                           "-o: empty path")):
        result = run(*args)
        assert result.exit_code == 2 and message in result.output, result.output
