"""The runners predict and evaluate call (run_predict, run_evaluate) and the engine
options, through a command wired as the lead wires ``predict``."""
import os
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner
from scale_util import MLP_SPEC, digits_like, mlp, save_dir

import graphspec.api as api
from graphspec.cli.common import friendly_errors
from graphspec.cli.common import input_files
from graphspec.cli.scale_commands import engine_options, load_data, run_evaluate, run_predict
from graphspec.errors import InputError
from graphspec.train.job import build_job
from graphspec.train.trainer import Trainer


@click.command()
@click.option("--input", "inputs", multiple=True)
@click.option("-o", "--output")
@click.option("--batch-size", type=int)
@engine_options
@friendly_errors
def predict_like(inputs, output, batch_size, engine, scheduler, chunk_rows, workers):
    model = api.load(MLP_SPEC, seed=0, params={"input_dim": 64}).model()
    written = run_predict(model, input_files(inputs), output, engine, batch_size,
                          chunk_rows, scheduler, workers)
    click.echo(f"saved {', '.join(written)}")


def invoke(*args):
    result = CliRunner().invoke(predict_like, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_predict_command_streams_npy_to_npy(tmp_path):
    x = digits_like(300)["pixels"]
    np.save(tmp_path / "x.npy", x)
    result = invoke("--input", f"pixels={tmp_path / 'x.npy'}", "-o", tmp_path / "y.npy",
                    "--batch-size", 64)
    assert result.exit_code == 0, result.output
    expected = mlp().model().predict(x, batch_size=64)["digit"]
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)


def test_output_that_is_an_input_is_refused_before_work(tmp_path):
    x = digits_like(50)["pixels"]
    np.save(tmp_path / "x.npy", x)
    os.symlink(tmp_path / "x.npy", tmp_path / "alias.npy")
    for target in (tmp_path / "x.npy", tmp_path / "alias.npy"):
        result = invoke("--input", f"pixels={tmp_path / 'x.npy'}", "-o", target)
        assert result.exit_code != 0 and "same file" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert np.array_equal(np.load(tmp_path / "x.npy"), x)


def test_dask_flags_need_the_dask_engine_and_bad_inputs_are_one_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 64)))
    result = invoke("--input", f"pixels={tmp_path / 'x.npy'}", "--chunk-rows", 8)
    assert result.exit_code == 2
    assert "--chunk-rows only applies with --engine dask" in result.output
    result = invoke("--input", f"pixels={tmp_path / 'missing.npy'}")
    assert result.exit_code == 1 and "no such file" in result.output
    result = invoke("--input", f"pixels={tmp_path / 'x.npy'}", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "name a .npy file" in result.output
    help_text = invoke("--help").output
    for flag in ("--engine [embedded|dask]", "--scheduler ADDRESS", "--chunk-rows N",
                 "--workers N"):
        assert flag in help_text


def test_missing_dask_is_one_line_saying_what_to_install(monkeypatch, tmp_path):
    for name in ("dask", "dask.array", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)     # import raises ImportError
    model = mlp().model()
    with pytest.raises(InputError, match=r"needs the dask extra: pip install "
                                         r"'graphspec\[dask\]'"):
        run_predict(model, {"pixels": np.zeros((4, 64))}, None, engine="dask")


def test_help_imports_no_dask():
    code = ("import sys, graphspec.cli, graphspec.cli.scale_commands, "
            "graphspec.engines.dask_engine, graphspec.engines.sweep; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_run_evaluate_streams_a_data_directory(tmp_path):
    data = digits_like(400)
    directory = save_dir(tmp_path / "data", data)
    graph = mlp()
    expected = Trainer(graph, build_job(graph)).evaluate(data, 50)
    assert run_evaluate(graph, directory, batch_size=50) == expected
    assert set(load_data(directory)) == {"pixels", "digit"}
    bad = dict(data, digit=data["digit"].astype(float))
    bad["digit"][390] = np.nan
    save_dir(tmp_path / "bad", bad)
    with pytest.raises(InputError, match=r"bad: batch of rows 350..399: target 'digit' .*"
                                         r"NaN or Inf"):
        run_evaluate(graph, tmp_path / "bad", batch_size=50)


def test_wants_streaming(tmp_path):
    from graphspec.cli.scale_commands import wants_streaming
    assert [wants_streaming(o) for o in (None, "y.csv", "y.npy", "y.npz", "out/", tmp_path)] \
        == [False, False, True, True, True, True]
    assert wants_streaming(None, "dask")
