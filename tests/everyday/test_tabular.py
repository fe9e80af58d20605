"""CSV/Parquet data: column mappings, vocabularies, located errors, both readers."""
import numpy as np
import pytest

from graphspec.errors import InputError
from graphspec.io import table_readers
from graphspec.io.tabular import load_table, parse_columns, write_predictions_csv

MAPPING = {"pixels": {"columns": "p0:p2"}, "label": {"column": "label", "categories": "auto"}}


@pytest.fixture(params=["pyarrow", "reference"])
def reader(request, monkeypatch):
    """Every behaviour holds for the fast reader and for the csv-module reference."""
    if request.param == "reference":
        monkeypatch.setattr(table_readers, "_arrow_csv", lambda *args: None)
    return request.param


@pytest.fixture()
def small(tmp_path, write_csv):
    return write_csv(tmp_path / "small.csv", ["id", "p0", "p1", "p2", "label"], [
        ["a", "0.5", "1", "-2e3", "cat"], ["b", "1.25", "2", "3", "dog"],
        ["c", "0", "3", "4", "cat"]])


def test_span_list_and_categories(small, reader):
    arrays, vocab = load_table(small, MAPPING)
    np.testing.assert_array_equal(arrays["pixels"], np.array(
        [[0.5, 1, -2000], [1.25, 2, 3], [0, 3, 4]], np.float32))
    assert arrays["pixels"].dtype == np.float32
    assert vocab == {"label": ["cat", "dog"]}
    np.testing.assert_array_equal(arrays["label"], [0, 1, 0])
    arrays, _ = load_table(small, {"xy": {"columns": ["p2", "p0"]}, "y": {"column": "p1"}})
    np.testing.assert_array_equal(arrays["xy"], [[-2000, 0.5], [3, 1.25], [4, 0]])
    assert arrays["y"].shape == (3,)


def test_a_given_vocabulary_is_reused_and_unknown_names_located(small, reader):
    arrays, vocab = load_table(small, MAPPING, vocabularies={"label": ["dog", "cat", "eel"]})
    np.testing.assert_array_equal(arrays["label"], [1, 0, 1])
    assert vocab["label"] == ["dog", "cat", "eel"]
    with pytest.raises(InputError, match=r"small.csv, line 3 \(data row 2\), column 'label': "
                                         r"'dog' is not one of the 2 categories"):
        load_table(small, MAPPING, vocabularies={"label": ["cat", "eel"]})


@pytest.mark.parametrize("cell, problem", [
    ("abc", "'abc' is not a number"), ("", "empty cell"), ("nan", "'nan' is NaN or infinite"),
    ("-inf", "'-inf' is NaN or infinite"), ("1e39", "'1e39' does not fit float32"),
])
def test_bad_cells_are_located_by_file_line_row_and_column(tmp_path, reader, cell, problem,
                                                              write_csv):
    path = write_csv(tmp_path / "bad.csv", ["p0", "p1", "p2", "label"], [
        ["1", "2", "3", "x"], ["4", "5", "6", "y"], ["7", cell, "9", "x"]])
    with pytest.raises(InputError) as info:
        load_table(path, MAPPING)
    assert str(info.value) == f"{path}, line 4 (data row 3), column 'p1': {problem}"


def test_line_numbers_count_quoted_newlines(tmp_path, reader):
    path = tmp_path / "quoted.csv"
    path.write_text('p0,p1,p2,label\n1,2,3,"two\nlines"\n4,x,6,y\n')
    with pytest.raises(InputError, match=r"line 4 \(data row 2\), column 'p1'"):
        load_table(str(path), MAPPING)


def test_missing_column_suggests_and_lists(small):
    with pytest.raises(InputError, match=r"no column 'lable' \(for 'y'\); did you mean "
                                         r"'label'\?; its columns: id, p0, p1, p2, label"):
        load_table(small, {"y": {"column": "lable"}})


def test_ragged_rows_and_bad_mappings(tmp_path, small):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    with pytest.raises(InputError, match=r"ragged.csv, line 3: 1 fields, the header has 2"):
        load_table(str(ragged), {"x": {"columns": "a:b"}})
    with pytest.raises(InputError, match="column mapping is invalid"):
        load_table(small, {"x": {"columns": 3}})
    with pytest.raises(InputError, match="runs backwards"):
        load_table(small, {"x": {"columns": "p2:p0"}})
    with pytest.raises(InputError, match="both as numbers and as categories"):
        load_table(small, {"x": {"columns": "p0:p1"}, "y": {"column": "p0", "categories": "auto"}})


def test_text_in_a_numeric_column_suggests_categories(small, reader):
    with pytest.raises(InputError, match="'cat' is not a number"):
        load_table(small, {"label": {"column": "label"}})


def test_npz_is_not_a_table_and_no_header_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(2))
    with pytest.raises(InputError, match="neither a CSV \\(UTF-8 text\\) nor a Parquet table"):
        load_table(str(tmp_path / "a.npz"), MAPPING)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="no header line"):
        load_table(str(tmp_path / "empty.csv"), MAPPING)


def test_parquet_matches_csv_and_nulls_are_located(tmp_path, small):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    table = pa.table({"p0": [0.5, 1.25, 0.0], "p1": [1, 2, 3], "p2": [-2000.0, 3.0, 4.0],
                      "label": ["cat", "dog", "cat"]})
    pq.write_table(table, tmp_path / "small.parquet")
    from_parquet, vocab = load_table(str(tmp_path / "small.parquet"), MAPPING)
    from_csv, _ = load_table(small, MAPPING)
    for name in MAPPING:
        np.testing.assert_array_equal(from_parquet[name], from_csv[name])
    assert vocab == {"label": ["cat", "dog"]}
    pq.write_table(pa.table({"p0": [1.0, None], "p1": [1, 2], "p2": [1, 2], "label": ["a", "b"]}),
                   tmp_path / "null.parquet")
    with pytest.raises(InputError, match=r"null.parquet, row 2, column 'p0': missing value"):
        load_table(str(tmp_path / "null.parquet"), MAPPING)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 20 + b"PAR1")
    import builtins
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(InputError, match=r"needs pyarrow: pip install 'graphspec\[tabular\]'"):
        load_table(str(path), MAPPING)


def test_parse_columns_option():
    assert parse_columns(["pixels=p0:p63", "xy=x,y", "price=price", "kind=kind"],
                         categories=["kind"]) == {
        "pixels": {"columns": "p0:p63"}, "xy": {"columns": ["x", "y"]},
        "price": {"column": "price"}, "kind": {"column": "kind", "categories": "auto"}}
    with pytest.raises(InputError, match="NAME=COLUMNS"):
        parse_columns(["pixels"])
    with pytest.raises(InputError, match="no --columns kind=COLUMN"):
        parse_columns([], categories=["kind"])


def test_predictions_csv_names_the_argmax_category(tmp_path):
    out = tmp_path / "out.csv"
    probabilities = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]], np.float32)
    outputs = {"species": probabilities, "size": np.array([[1.5], [2.0]])}
    names = write_predictions_csv(str(out), outputs,
                                  {"species": ["setosa", "versicolor", "virginica"]})
    assert names == ["species", "species_probability", "size"]
    lines = out.read_text().splitlines()
    assert lines[0] == "species,species_probability,size"
    assert lines[1].startswith("versicolor,0.699999") and lines[1].endswith(",1.5")
    assert lines[2].startswith("setosa,0.8")


def test_read_data_passes_npz_through_and_maps_tables_from_model_metadata(tmp_path, small):
    from graphspec.io.tabular import read_data
    np.savez(tmp_path / "d.npz", pixels=np.ones((2, 3)))
    arrays, vocab, used = read_data(str(tmp_path / "d.npz"))
    assert list(arrays) == ["pixels"] and vocab == {} and used == {}
    metadata = {"columns": MAPPING, "vocabularies": {"label": ["dog", "cat"]}}
    arrays, vocab, used = read_data(small, names=["pixels"], metadata=metadata)
    # the mapping used, its span resolved to the names it read (what train records)
    assert list(arrays) == ["pixels"] and used == {"pixels": {"columns": ["p0", "p1", "p2"]}}
    arrays, vocab, _ = read_data(small, metadata=metadata)
    np.testing.assert_array_equal(arrays["label"], [1, 0, 1])        # the recorded order
    with pytest.raises(InputError, match=r"no columns are mapped to \['other'\]"):
        read_data(small, names=["pixels", "other"], metadata=metadata)


def test_binary_garbage_goes_to_the_array_loader_not_the_csv_reader(tmp_path):
    from graphspec.io.tabular import read_data
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert table_readers.table_kind(str(garbage)) is None
    with pytest.raises(InputError, match="neither an .npz archive nor a .npy array"):
        read_data(str(garbage), MAPPING)
    text = tmp_path / "data.npz"                     # a CSV whatever its name says
    text.write_text("p0,p1,p2,label\n1,2,3,ü\n")
    assert table_readers.table_kind(str(text)) == "csv"


def test_category_names_cannot_become_spreadsheet_formulas(tmp_path):
    out = tmp_path / "out.csv"
    write_predictions_csv(str(out), {"y": np.eye(3, dtype=np.float32)},
                          {"y": ["=HYPERLINK(\"http://x\")", "-1", "@SUM(A1)"]})
    import csv
    with open(out, newline="") as handle:
        names = [row["y"] for row in csv.DictReader(handle)]
    assert names == ["'=HYPERLINK(\"http://x\")", "-1", "'@SUM(A1)"]


def test_an_empty_category_cell_is_missing_data(tmp_path, write_csv, reader):
    path = write_csv(tmp_path / "e.csv", ["p0", "p1", "p2", "label"],
                     [["1", "2", "3", "cat"], ["1", "2", "3", ""]])
    with pytest.raises(InputError, match=r"line 3 \(data row 2\), column 'label': empty cell"):
        load_table(path, MAPPING)


def test_a_hash_in_a_cell_is_data_not_a_comment(tmp_path, write_csv, reader):
    path = write_csv(tmp_path / "h.csv", ["p0", "p1"], [["1", "2"], ["3", "4 #note"]])
    with pytest.raises(InputError, match=r"line 3 \(data row 2\), column 'p1': '4 #note' is "
                                         r"not a number"):
        load_table(path, {"x": {"columns": "p0:p1"}})
