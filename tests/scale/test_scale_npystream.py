"""Streaming .npy: headers checked before anything is mapped, windows read exact rows,
outputs appear under their final name whole or not at all."""
import os

import numpy as np
import pytest

from graphspec.errors import InputError
from graphspec.io.npystream import NpyWriter, open_npy, open_npy_dir


def test_windows_read_exactly_the_rows(tmp_path):
    x = np.arange(1000 * 3, dtype=np.float64).reshape(1000, 3)
    np.save(tmp_path / "x.npy", x)
    source = open_npy(tmp_path / "x.npy")
    assert (source.shape, source.dtype, len(source)) == ((1000, 3), np.float64, 1000)
    assert np.array_equal(source.rows(0, 1000), x)
    assert np.array_equal(source.rows(997, 2000), x[997:])    # clipped at the end
    assert source.rows(5, 5).shape == (0, 3)
    assert np.array_equal(source[10:20, 1:], x[10:20, 1:])     # dask's from_array getter


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True), "pickled"),
    (lambda p: np.save(p, np.array(["a", "b"])), "plain numeric"),
    (lambda p: np.save(p, np.ones(3, dtype=np.complex64)), "plain numeric"),
    (lambda p: np.save(p, np.zeros((2,), dtype=[("a", "f4")])), "plain numeric"),
    (lambda p: np.save(p, np.float32(3)), "single value"),
    (lambda p: np.save(p, np.asfortranarray(np.ones((4, 3)))), "Fortran"),
    (lambda p: np.savez(str(p)[:-4], x=np.ones(3)) or os.replace(str(p)[:-4] + ".npz", p),
     ".npz archive"),
    (lambda p: p.write_bytes(b"hello world"), "neither"),
])
def test_bad_files_refused_before_mapping(tmp_path, make, message):
    path = tmp_path / "bad.npy"
    make(path)
    with pytest.raises(InputError, match=message):
        open_npy(path)


def test_truncated_file_refused_from_its_header(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((1000, 8), dtype=np.float32))
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 4)
    with pytest.raises(InputError, match="more data than the file holds"):
        open_npy(path)


def test_data_directory_by_name(tmp_path):
    np.save(tmp_path / "pixels.npy", np.ones((5, 2)))
    np.save(tmp_path / "digit.npy", np.arange(5))
    (tmp_path / "notes.txt").write_text("ignored")
    assert sorted(open_npy_dir(tmp_path)) == ["digit", "pixels"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no NAME.npy files"):
        open_npy_dir(tmp_path / "empty")
    with pytest.raises(InputError, match="not a directory"):
        open_npy_dir(tmp_path / "pixels.npy")


def test_writer_renames_only_on_commit_and_rewrites_rows_in_place(tmp_path):
    target = tmp_path / "out.npy"
    writer = NpyWriter(target, (10, 2), np.float32)
    writer.write(4, np.full((6, 2), 7))
    writer.write(0, np.arange(8).reshape(4, 2))
    writer.write(4, np.full((6, 2), 9))          # a retried block: same rows, no growth
    assert not target.exists()
    writer.commit()
    got = np.load(target)
    assert got.dtype == np.float32 and got.shape == (10, 2)
    assert np.array_equal(got[:4], np.arange(8).reshape(4, 2)) and np.all(got[4:] == 9)
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]


def test_aborted_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.npy"
    np.save(target, np.zeros(3))
    writer = NpyWriter(target, (10,), np.float32)
    writer.write(0, np.ones(10))
    writer.abort()
    assert np.array_equal(np.load(target), np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]
    short = NpyWriter(target, (10,), np.float32)
    with pytest.raises(InputError, match="do not fit"):
        short.write(8, np.ones(5))
    short.abort()
