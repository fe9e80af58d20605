"""Weights record the column NAMES training read (a span resolved against the training
file's header): predict and evaluate read a data file by name, in any column order, and
refuse one that lacks a column naming it. init says which columns it leaves out."""
import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from graphspec.cli import main
from graphspec.cli.data_commands import starting_spec
from graphspec.errors import InputError
from graphspec.io import metadata
from graphspec.io.metadata import META_KEY, read_file_metadata
from graphspec.io.files import load_npz, save_npz
from graphspec.io.tabular import read_data

HEADER = ["a", "b", "c", "d", "y"]


def _rows(n=64, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a, c, d = rng.random(3)
        b = rng.random() * 100
        rows.append([f"{a:.3f}", f"{b:.2f}", f"{c:.3f}", f"{d:.3f}", "hi" if b > 50 else "lo"])
    return rows


def _reorder(path, write_csv, order, rows):
    index = [HEADER.index(c) for c in order]
    return write_csv(path, order, [[row[i] for i in index] for row in rows])


def _write(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """init (a span a:d for the 4 numeric columns), train, pack: the model file."""
    folder = tmp_path_factory.mktemp("bynames")
    rows = _rows()
    data = _write(folder / "t4.csv", HEADER, rows)
    spec, weights, model = folder / "t4.yaml", folder / "t4.npz", folder / "t4.gspec.zip"
    for args in (["init", "--data", data, "--target", "y", "-o", spec],
                 ["train", spec, "--data", data, "-o", weights, "--seed", 0, "--epochs", 3],
                 ["pack", spec, "--weights", weights, "-o", model]):
        result = _run(*args)
        assert result.exit_code == 0, result.output
    assert '{columns: "a:d"}' in spec.read_text()
    return folder, rows, spec, weights, model


def test_training_records_the_resolved_column_names(packed):
    _, _, _, weights, model = packed
    for path in (weights, model):
        columns = read_file_metadata(str(path))["columns"]
        assert columns["features"] == {"columns": ["a", "b", "c", "d"]}
        assert columns["y"] == {"column": "y", "categories": "auto"}


def test_read_data_returns_the_mapping_resolved_against_the_header(tmp_path, write_csv):
    path = write_csv(tmp_path / "d.csv", ["a", "x", "b", "y"], [["1", "2", "3", "4"]])
    arrays, _, used = read_data(path, {"f": {"columns": "a:b"}, "t": {"column": "y"}})
    assert used == {"f": {"columns": ["a", "x", "b"]}, "t": {"column": "y"}}
    assert arrays["f"].tolist() == [[1, 2, 3]]


@pytest.mark.parametrize("order", [["a", "c", "b", "d", "y"],      # a middle swap
                                   ["d", "b", "c", "a", "y"],      # an end column moved
                                   ["y", "d", "c", "b", "a"]])
def test_predict_and_evaluate_read_columns_by_name(packed, write_csv, order, tmp_path):
    folder, rows, spec, weights, model = packed
    same = folder / "t4.csv"
    moved = _reorder(tmp_path / "moved.csv", write_csv, order, rows)
    for source in ([model], [spec, "--weights", weights]):
        outs = []
        for data in (same, moved):
            out = tmp_path / f"p{len(outs)}.npz"
            result = _run("predict", *source, "--data", data, "-o", out)
            assert result.exit_code == 0, result.output
            assert "order" not in result.output          # no old-file warning
            outs.append(load_npz(str(out))["y"])
        np.testing.assert_array_equal(outs[0], outs[1])
        evaluated = []
        for data in (same, moved):
            result = _run("evaluate", *source, "--data", data, "--format", "json")
            assert result.exit_code == 0, result.output
            evaluated.append(json.loads(result.stdout))
        assert evaluated[0] == evaluated[1]


def test_a_file_without_recorded_columns_is_refused_naming_them(packed, write_csv, tmp_path):
    _, rows, _, _, model = packed
    one = _reorder(tmp_path / "one.csv", write_csv, ["a", "c", "d"], rows)
    result = _run("predict", model, "--data", one)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == \
        f"error: {one}: no column 'b' (for 'features'); its columns: a, c, d"
    two = _reorder(tmp_path / "two.csv", write_csv, ["d", "a", "y"], rows)
    for command in ("predict", "evaluate"):
        result = _run(command, model, "--data", two)
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1] == \
            f"error: {two}: no columns 'b' (for 'features'), 'c' (for 'features'); its " \
            "columns: d, a, y"


def test_an_explicit_columns_span_means_this_files_header(packed, write_csv, tmp_path):
    _, rows, _, _, model = packed
    moved = _reorder(tmp_path / "m.csv", write_csv, ["a", "c", "b", "d", "y"], rows)
    by_name, by_span = tmp_path / "n.npz", tmp_path / "s.npz"
    assert _run("predict", model, "--data", moved, "-o", by_name).exit_code == 0
    result = _run("predict", model, "--data", moved, "--columns", "features=a:d",
                  "-o", by_span)
    assert result.exit_code == 0, result.output
    assert not np.array_equal(load_npz(str(by_name))["y"], load_npz(str(by_span))["y"])


def test_old_files_with_a_span_still_work_and_warn(packed, tmp_path):
    folder, _, _, _, model = packed
    arrays = load_npz(str(model))
    meta = read_file_metadata(str(model))
    meta["columns"]["features"] = {"columns": "a:d"}          # as older versions wrote it
    arrays[META_KEY] = metadata.metadata_array(meta)
    old = tmp_path / "old.gspec.zip"
    save_npz(str(old), arrays)
    new_out, old_out = tmp_path / "n.npz", tmp_path / "o.npz"
    assert _run("predict", model, "--data", folder / "t4.csv", "-o", new_out).exit_code == 0
    result = _run("predict", old, "--data", folder / "t4.csv", "-o", old_out)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "'features' as the span a:d" in warnings[0] and \
        "order" in warnings[0], result.stderr
    np.testing.assert_array_equal(load_npz(str(new_out))["y"], load_npz(str(old_out))["y"])


def test_an_edited_job_mapping_wins_over_the_recorded_one(packed, write_csv, tmp_path):
    """A data: entry that is not the one training used (here b:d, 3 columns of the same
    file) is the user's choice now: it is read from this file's header, not replaced."""
    from graphspec.io.tabular import with_recorded
    meta = {"columns": {"features": {"columns": ["a", "b", "c", "d"]}}}
    same, notes = with_recorded({"features": {"columns": "a:d"}}, meta)
    assert same == meta["columns"] and notes == []
    edited, _ = with_recorded({"features": {"columns": "b:d"}}, meta)
    assert edited == {"features": {"columns": "b:d"}}
    added, _ = with_recorded({}, meta)
    assert added == meta["columns"]


# -- D10: init and columns with empty cells -------------------------------------------------
def test_init_leaves_out_numeric_columns_with_empty_cells_and_says_so(tmp_path, write_csv):
    path = write_csv(tmp_path / "gap.csv", ["a", "b", "c", "name", "y"],
                     [["1", "2", "3", "x", "0"], ["2", "", "4", "y", "1"],
                      ["3", "4", "5", "z", "0"]])
    notes = []
    text, _ = starting_spec(path, "y", notes=notes)
    assert 'features: {columns: ["a", "c"]}' in text
    assert "# Numeric columns left out (empty cells; fill them, then add the columns to " \
        "features): b" in text
    assert "# Text columns left out (not numbers): name" in text
    assert "Text columns left out (not numbers): b" not in text
    result = _run("init", "--data", path, "--target", "y", "-o", tmp_path / "s.yaml")
    assert result.exit_code == 0, result.output
    assert "left out numeric column(s) with missing values: b (1 empty, first in data " \
        "row 2); fill the empty cells, then add them to the features" in result.stderr
    assert "left out text column(s) (not numbers): name" in result.stderr
    # what init wrote trains as written: the column with empty cells is not in it
    result = _run("train", tmp_path / "s.yaml", "--data", path, "-o", tmp_path / "w.npz",
                  "--epochs", 1)
    assert result.exit_code == 0, result.output


def test_init_refuses_a_target_with_empty_cells(tmp_path, write_csv):
    path = write_csv(tmp_path / "gapy.csv", ["a", "y"], [["1", "0"], ["2", ""], ["3", "1"]])
    result = _run("init", "--data", path, "--target", "y", "-o", tmp_path / "s.yaml")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == \
        f"error: {path}: column 'y' (to predict) has 1 empty cell(s), the first in data " \
        "row 2; fill them or drop those rows, then run init again"


def test_empty_cells_are_still_refused_where_data_enters(tmp_path, write_csv):
    path = write_csv(tmp_path / "g.csv", ["a", "b"], [["1", "2"], ["", "3"]])
    with pytest.raises(InputError, match=r"line 3 \(data row 2\), column 'a': empty cell"):
        read_data(path, {"x": {"columns": ["a", "b"]}})
