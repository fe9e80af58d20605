"""Crash safety: a killed training run resumes to the same weights, a failed write
leaves the old file whole, a NaN loss stops (or is skipped) with a message that says
where.
"""
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import REPO, write_spec

from graphspec.cli import main
from graphspec.errors import InputError
from graphspec.io import files

# With 32768 samples an epoch takes ~1 s (one BLAS thread, 2 cores).
SLOW = """
graphspec: 1
layers:
  h1: {type: Dense, units: 256, activation: relu}
  h2: {type: Dense, units: 256, activation: relu}
  out: {type: Dense, units: 10, activation: softmax}
models:
  m:
    inputs:
      x: {shape: [64]}
    calls:
      - {layer: h1, in: x, out: a}
      - {layer: h2, in: a, out: b}
      - {layer: out, in: b, out: y}
    outputs: [y]
training:
  default:
    model: m
    loss: sparse_categorical_crossentropy
    optimizer: {type: adam, learning_rate: 0.001}
    batch_size: 32
"""
EPOCHS = 4


def _train_command(spec, data, out, *extra):
    return [sys.executable, "-m", "graphspec.cli", "train", str(spec), "--data", str(data),
            "-o", str(out), "--epochs", str(EPOCHS), "--seed", "0", *map(str, extra)]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # One BLAS thread: the same summation order in every run (bitwise-equal weights),
    # and no oversubscription on a busy CI machine.
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _checkpoint_epoch(path) -> int:
    try:
        with np.load(path) as archive:
            return int(archive["trainer/epoch"])
    except (OSError, KeyError, ValueError):
        return 0


def test_training_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    spec = write_spec(tmp_path, SLOW)
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.normal(size=(32768, 64)).astype(np.float32),
             y=rng.integers(0, 10, 32768))

    full = tmp_path / "full.npz"
    subprocess.run(_train_command(spec, data, full), check=True, env=_env(), cwd=tmp_path,
                   capture_output=True, timeout=300)

    checkpoints = tmp_path / "ck"
    checkpoint = checkpoints / "checkpoint.npz"
    killed = subprocess.Popen(_train_command(spec, data, tmp_path / "killed.npz",
                                             "--checkpoint", checkpoints),
                              env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        saved = {}                       # epoch -> when its checkpoint appeared
        while len(saved) < 2 and time.monotonic() < deadline and killed.poll() is None:
            epoch = _checkpoint_epoch(checkpoint)
            if epoch and epoch not in saved:
                saved[epoch] = time.monotonic()
            time.sleep(0.01)
        assert sorted(saved) == [1, 2], f"checkpoints seen: {saved}"
        epoch_seconds = saved[2] - saved[1]
        time.sleep(epoch_seconds / 2)    # half-way through epoch 3 of 4
        assert killed.poll() is None, "the run finished before it could be killed"
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    print(f"epoch time {epoch_seconds:.2f} s; killed mid-epoch 3")
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.npz").exists()

    # The last checkpoint is whole: epoch 2, every weight and optimizer state.
    arrays = files.load_npz(checkpoint)
    assert int(arrays["trainer/epoch"]) == 2
    assert {"h1/kernel", "h2/kernel", "out/bias"} <= set(arrays)
    assert any(key.startswith("optimizer/") for key in arrays)

    resumed = tmp_path / "resumed.npz"
    result = subprocess.run(_train_command(spec, data, resumed, "--checkpoint", checkpoints,
                                           "--resume"),
                            env=_env(), cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"for {EPOCHS} epoch(s)" in result.stdout
    with np.load(full) as want, np.load(resumed) as got:
        assert sorted(want.files) == sorted(got.files)
        for key in want.files:
            assert np.array_equal(want[key], got[key]), key


# -- atomic writes ----------------------------------------------------------------------
def _temp_files(directory):
    return [p.name for p in directory.iterdir() if files.TEMP_MARK in p.name]


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"),
                                     OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()],
                         ids=["error", "disk-full", "interrupt"])
def test_a_failure_during_savez_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch,
                                                                      failure):
    target = tmp_path / "weights.npz"
    files.save_npz(target, {"w": np.arange(3.0)})
    before = target.read_bytes()

    def half_written_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half of a zip")
        raise failure
    monkeypatch.setattr(files.np, "savez", half_written_savez)
    expected = InputError if isinstance(failure, OSError) else type(failure)
    with pytest.raises(expected):
        files.save_npz(target, {"w": np.zeros(1000)})
    assert target.read_bytes() == before
    assert _temp_files(tmp_path) == []
    with np.load(target) as archive:
        assert np.array_equal(archive["w"], np.arange(3.0))


def test_a_failed_rename_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "history.json"
    files.save_json(target, {"loss": [1.0]})
    before = target.read_bytes()

    def failing_replace(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(InputError, match="cannot write .*history.json.*nothing was changed"):
        files.save_json(target, {"loss": [2.0]})
    assert target.read_bytes() == before and _temp_files(tmp_path) == []


def test_cli_reports_a_full_disk_in_one_line_and_keeps_the_old_weights(tmp_path,
                                                                      monkeypatch):
    from specs_util import MLP
    spec = write_spec(tmp_path, MLP)
    out = tmp_path / "w.npz"
    out.write_bytes(b"old weights")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", full_disk)
    result = CliRunner().invoke(main, ["build", str(spec), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert f"error: cannot write '{out}': No space left on device (nothing was changed)" \
        in result.output
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"old weights" and _temp_files(tmp_path) == []


# -- NaN / Inf losses -----------------------------------------------------------------------
NAN_SPEC = """
graphspec: 1
layers:
  d: {type: Dense, units: 2}
models:
  m:
    inputs:
      x: {shape: [3]}
    calls:
      - {layer: d, in: x, out: y}
    outputs: [y]
training:
  default:
    model: m
    # log(y_true) is -inf for the zero targets: only batch 2 (samples 4-7) has them.
    loss: {expr: "mean(square(y_true - y_pred) + log(y_true), axis=-1)"}
    optimizer: {type: sgd, learning_rate: 0.01}
    batch_size: 4
    shuffle: false
    epochs: 2
"""


@pytest.fixture
def nan_run(tmp_path):
    spec = write_spec(tmp_path, NAN_SPEC)
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    y = np.ones((12, 2), np.float32)
    y[4:8] = 0.0
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=y)
    return spec, data


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_nan_loss_stops_with_epoch_and_batch(tmp_path, nan_run):
    spec, data = nan_run
    out = tmp_path / "out.npz"
    result = CliRunner().invoke(main, ["train", str(spec), "--data", str(data), "-o", str(out),
                                       "--seed", "0"])
    assert result.exit_code == 1, result.output
    assert "error: loss became -inf at epoch 1, batch 2;" in result.output
    assert "--on-nan skip" in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_on_nan_skip_skips_those_batches_and_finishes(tmp_path, nan_run):
    spec, data = nan_run
    out = tmp_path / "out.npz"
    history = tmp_path / "history.json"
    result = CliRunner().invoke(main, ["train", str(spec), "--data", str(data), "-o", str(out),
                                       "--seed", "0", "--on-nan", "skip", "--history",
                                       str(history)])
    assert result.exit_code == 0, result.output
    assert "for 2 epoch(s)" in result.output
    with np.load(out) as weights:
        assert all(np.all(np.isfinite(weights[k])) for k in weights.files)
    initial = tmp_path / "initial.npz"
    assert CliRunner().invoke(main, ["build", str(spec), "--seed", "0", "-o",
                                     str(initial)]).exit_code == 0
    with np.load(out) as trained, np.load(initial) as start:
        assert not np.array_equal(trained["d/kernel"], start["d/kernel"])
