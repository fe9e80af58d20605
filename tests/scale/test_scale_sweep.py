"""Sweeps: a grid over spec params, one seeded training run per point, ranked best
first by validation loss; the command prints a table and writes JSON."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scale_util import tiny_data, tiny_spec

from graphspec.cli.scale_commands import sweep as sweep_command
from graphspec.engines import sweep
from graphspec.errors import InputError, SpecErrors

GRID = ["lr=0.001,0.03", "units=4,16"]


def without_times(report):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in report["results"]]


def test_grid_is_every_combination_first_axis_slowest():
    assert sweep.grid_points(["a=1,2", "b=x,true"]) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": True}, {"a": 2, "b": "x"}, {"a": 2, "b": True}]
    for bad, message in [(["a="], "NAME=VALUE1"), (["a=1,1"], "twice"),
                         (["a=1", "a=2"], "more than once"), ([], "at least one"),
                         (["a=[1]"], "not a number")]:
        with pytest.raises(InputError, match=message):
            sweep.grid_points(bad)


def test_two_by_two_ranked_by_validation_loss_and_reproducible(tmp_path):
    spec, data = tiny_spec(tmp_path), tiny_data()
    report = sweep.sweep(spec, data, GRID, seed=7)
    results = report["results"]
    assert report["score"] == "val_loss" and len(results) == 4
    scores = [r["metrics"]["val_loss"] for r in results]
    assert scores == sorted(scores) and [r["rank"] for r in results] == [1, 2, 3, 4]
    assert [r["score"] for r in results] == scores
    assert sorted(tuple(r["params"].values()) for r in results) == [
        (0.001, 4), (0.001, 16), (0.03, 4), (0.03, 16)]
    assert all(r["epochs"] == 3 for r in results)
    assert without_times(sweep.sweep(spec, data, GRID, seed=7)) == without_times(report)
    other = sweep.sweep(spec, data, GRID, seed=8)
    assert without_times(other) != without_times(report)     # the seed matters
    # One point alone gives the numbers it had in the grid: points are independent.
    best = results[0]["params"]
    alone = sweep.sweep(spec, data, [f"lr={best['lr']}", f"units={best['units']}"], seed=7)
    assert alone["results"][0]["metrics"] == results[0]["metrics"]


def test_without_validation_split_ranks_by_loss(tmp_path):
    spec = tiny_spec(tmp_path)
    spec.write_text(spec.read_text().replace("    validation_split: 0.25\n", ""))
    report = sweep.sweep(spec, tiny_data(), ["lr=0.001,0.03"], epochs=2)
    assert report["score"] == "loss"
    assert [r["epochs"] for r in report["results"]] == [2, 2]
    losses = [r["metrics"]["loss"] for r in report["results"]]
    assert losses == sorted(losses)


def test_a_diverging_point_is_ranked_last_with_its_error():
    results = [{"params": {"lr": 1}, "metrics": {"loss": 0.5}},
               {"params": {"lr": 2}, "error": "loss became nan"},
               {"params": {"lr": 3}, "metrics": {"loss": math.nan}},
               {"params": {"lr": 4}, "metrics": {"loss": 0.25}}]
    ranked = sweep.rank(results)
    assert [r["params"]["lr"] for r in ranked] == [4, 1, 2, 3]
    table = sweep.format_table({"score": "loss", "results": ranked})
    assert "error: loss became nan" in table.splitlines()[4]


def test_bad_points_and_data_fail_before_any_training(tmp_path):
    spec, data = tiny_spec(tmp_path), tiny_data()
    with pytest.raises(SpecErrors, match="declares no param 'lrr'"):
        sweep.sweep(spec, data, ["lrr=0.1,0.2"])
    with pytest.raises(SpecErrors):
        sweep.sweep(spec, data, ["units=4,-3"])          # the second point is invalid
    with pytest.raises(InputError, match="lacks"):
        sweep.sweep(spec, {"x": data["x"]}, GRID)


def test_sweep_command_table_json_and_examples(tmp_path):
    spec = tiny_spec(tmp_path)
    np.savez(tmp_path / "data.npz", **tiny_data())
    out = tmp_path / "results.json"
    args = [str(spec), "--data", str(tmp_path / "data.npz"), "--set", GRID[0], "--set",
            GRID[1], "--seed", "3", "-o", str(out)]
    result = CliRunner().invoke(sweep_command, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["rank", "lr", "units", "val_loss", "loss", "accuracy",
                                "val_accuracy", "epochs", "seconds"]
    report = json.loads(out.read_text())
    assert report["seed"] == 3 and report["score"] == "val_loss"
    first = report["results"][0]
    assert lines[2].split()[:4] == ["1", str(first["params"]["lr"]),
                                    str(first["params"]["units"]),
                                    f"{first['metrics']['val_loss']:.4f}"]
    assert f"best: lr={first['params']['lr']}, units={first['params']['units']}" in \
        result.stderr
    assert [line.split(" (")[0] for line in result.stderr.splitlines()[:4]] == [
        "point 1/4", "point 2/4", "point 3/4", "point 4/4"]
    again = CliRunner().invoke(sweep_command, args)
    assert without_times(json.loads(out.read_text())) == without_times(report)
    assert again.exit_code == 0
    help_text = CliRunner().invoke(sweep_command, ["--help"]).output
    assert help_text.count("graphspec sweep ") == 3


def test_sweep_command_errors_are_one_line(tmp_path):
    spec = tiny_spec(tmp_path)
    np.savez(tmp_path / "data.npz", **tiny_data())
    for extra, message in [(["--set", "lr=0.1,"], "not a number"),
                           (["--set", "lr=0.1", "-o", str(spec)], "SPEC"),
                           (["--set", "lr=0.1", "--scheduler", "tcp://x:1"], "only apply")]:
        result = CliRunner().invoke(sweep_command, [str(spec), "--data",
                                                    str(tmp_path / "data.npz")] + extra)
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output
