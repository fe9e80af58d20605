"""predict -o DIR/ (NAME.npy per output) on every path that documents it, the guard
against DIR/NAME.npy being an input, --engine dask -o FILE.csv, and the Dask-only flags
refused without --engine dask (predict and evaluate)."""
import os

import numpy as np
import pytest
from click.testing import CliRunner

from graphspec.cli import main


@pytest.fixture
def setup(tmp_path):
    run = CliRunner().invoke
    result = run(main, ["build", "specs/mlp.yaml", "--set", "input_dim=5", "--seed", "0",
                        "-o", str(tmp_path / "w.npz")])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    np.save(tmp_path / "pixels.npy", x)
    np.savez(tmp_path / "test.npz", pixels=x, digit=np.arange(7) % 10)
    expected = run(main, ["predict", "specs/mlp.yaml", "--weights", str(tmp_path / "w.npz"),
                          "--input", f"pixels={tmp_path / 'pixels.npy'}",
                          "-o", str(tmp_path / "ref.npy")])
    assert expected.exit_code == 0, expected.output
    return tmp_path, np.load(tmp_path / "ref.npy")


def predict(tmp_path, *args):
    result = CliRunner().invoke(main, ["predict", "specs/mlp.yaml", "--weights",
                                       str(tmp_path / "w.npz"), *map(str, args)])
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("slash", ["/", ""])
@pytest.mark.parametrize("exists", [True, False])
def test_predict_streams_into_a_directory(setup, slash, exists):
    tmp_path, expected = setup
    out = tmp_path / "od"
    if exists:
        out.mkdir()
    elif not slash:
        pytest.skip("a missing path without '/' is not a directory")
    result = predict(tmp_path, "--input", f"pixels={tmp_path / 'pixels.npy'}",
                     "-o", f"{out}{slash}")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(out / "digit.npy"), expected)


def test_predict_from_data_file_into_a_directory(setup):
    tmp_path, expected = setup
    result = predict(tmp_path, "--data", tmp_path / "test.npz", "-o", f"{tmp_path / 'od'}/")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / "od")) == ["digit.npy"]       # no temp files left
    assert np.allclose(np.load(tmp_path / "od" / "digit.npy"), expected, atol=1e-6)


def test_directory_output_that_would_overwrite_an_input_is_refused(setup):
    tmp_path, _ = setup
    np.save(tmp_path / "digit.npy", np.zeros((7, 5), np.float32))
    result = predict(tmp_path, "--input", f"pixels={tmp_path / 'digit.npy'}",
                     "-o", f"{tmp_path}/")
    assert result.exit_code == 2
    assert "-o and --input pixels name the same file" in result.output
    assert np.array_equal(np.load(tmp_path / "digit.npy"), np.zeros((7, 5), np.float32))


def test_other_outputs_still_refuse_directories(setup):
    tmp_path, _ = setup
    (tmp_path / "wdir").mkdir()
    result = CliRunner().invoke(main, ["build", "specs/mlp.yaml", "--set", "input_dim=5",
                                       "-o", f"{tmp_path / 'wdir'}/"])
    assert result.exit_code != 0 and "it is a directory" in result.output
    result = predict(tmp_path, "--input", f"pixels={tmp_path / 'pixels.npy'}",
                     "-o", f"{tmp_path / 'w.npz'}/")
    assert result.exit_code != 0 and "not a directory" in result.output


def test_dask_only_flags_without_dask_are_usage_errors(setup):
    tmp_path, _ = setup
    for flag, value in (("--scheduler", "tcp://nowhere:1"), ("--chunk-rows", "8"),
                        ("--workers", "2")):
        result = predict(tmp_path, "--data", tmp_path / "test.npz", flag, value)
        assert result.exit_code == 2 and f"{flag} only applies with --engine dask" \
            in result.output, result.output
        result = CliRunner().invoke(main, ["evaluate", "specs/mlp.yaml", "--weights",
                                           str(tmp_path / "w.npz"), "--data",
                                           str(tmp_path / "test.npz"), flag, value])
        assert result.exit_code == 2 and f"{flag} only applies with --engine dask" \
            in result.output, result.output


def test_dask_engine_writes_csv(setup):
    pytest.importorskip("distributed")
    tmp_path, expected = setup
    result = predict(tmp_path, "--input", f"pixels={tmp_path / 'pixels.npy'}",
                     "-o", tmp_path / "p.csv", "--engine", "dask", "--workers", "1")
    assert result.exit_code == 0, result.output
    embedded = predict(tmp_path, "--input", f"pixels={tmp_path / 'pixels.npy'}",
                       "-o", tmp_path / "e.csv")
    assert embedded.exit_code == 0, embedded.output
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "e.csv").read_text()
