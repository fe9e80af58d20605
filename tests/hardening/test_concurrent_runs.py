"""Concurrent and killed runs (issue 9): a second run on the same output refuses with
the holder's pid; SIGKILL at any moment leaves a whole checkpoint and nothing stale."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import REPO, write_spec

from graphspec.cli import main
from graphspec.io import files, locks

HERE = Path(__file__).parent
SPEC = """
graphspec: 1
layers:
  h: {type: Dense, units: 16, activation: relu}
  out: {type: Dense, units: 3, activation: softmax}
models:
  m:
    inputs:
      x: {shape: [4]}
    calls:
      - {layer: h, in: x, out: a}
      - {layer: out, in: a, out: y}
    outputs: [y]
training:
  default:
    model: m
    loss: sparse_categorical_crossentropy
    optimizer: {type: sgd, learning_rate: 0.01}
    batch_size: 4
"""


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}


def _train(spec, data, out, *extra):
    return [sys.executable, "-m", "graphspec.cli", "train", str(spec), "--data", str(data),
            "-o", str(out), "--seed", "0", *map(str, extra)]


def test_a_second_train_into_the_same_output_refuses_naming_the_holder(tmp_path):
    spec = write_spec(tmp_path, SPEC)
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.normal(size=(64, 4)).astype(np.float32), y=rng.integers(0, 3, 64))
    out = tmp_path / "w.npz"
    first = subprocess.Popen(_train(spec, data, out, "--epochs", "100000"), env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = Path(locks.lock_path(out))
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, "first run never locked"
            time.sleep(0.02)
        second = subprocess.run(_train(spec, data, out, "--epochs", "1"), env=_env(),
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 1, second.stderr
        assert second.stderr.strip() == (
            f"error: -o '{out}' is being written by another graphspec run (pid {first.pid}, "
            f"lock {lock}); wait for it to finish or choose another path for -o")
        assert first.poll() is None        # the holder was not disturbed
    finally:
        first.kill()
        first.wait()
    # Killed, the holder's lock is gone with it: the next run takes it and finishes.
    third = subprocess.run(_train(spec, data, out, "--epochs", "1"), env=_env(),
                           capture_output=True, text=True, timeout=60, check=False)
    assert third.returncode == 0, third.stderr
    assert not lock.exists()


def test_the_checkpoint_directory_is_locked_too(tmp_path):
    spec = write_spec(tmp_path, SPEC)
    np.savez(tmp_path / "d.npz", x=np.ones((4, 4), np.float32), y=np.zeros(4, int))
    ck = tmp_path / "ck"
    ck.mkdir()
    with locks.locked(ck / "checkpoint.npz", "--checkpoint"):
        result = CliRunner().invoke(main, ["train", str(spec), "--data", str(tmp_path / "d.npz"),
                                           "-o", str(tmp_path / "w.npz"), "--checkpoint", str(ck)])
    assert result.exit_code == 1
    assert f"--checkpoint '{ck / 'checkpoint.npz'}' is being written by another graphspec " \
           f"run (pid {os.getpid()}" in result.output
    assert not (tmp_path / "w.npz").exists()


def test_a_symlinked_alias_of_a_locked_output_is_locked_too(tmp_path):
    (tmp_path / "real").mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path / "real")
    with locks.locked(tmp_path / "real" / "w.npz"):
        with pytest.raises(locks.OutputLocked, match=f"pid {os.getpid()}"):
            with locks.locked(alias / "w.npz"):
                pass
    with locks.locked(alias / "w.npz"):       # released: free again, and cleaned up after
        pass
    assert list((tmp_path / "real").iterdir()) == []


def test_stale_temp_files_of_a_dead_writer_are_removed_live_ones_kept(tmp_path):
    target = tmp_path / "w.npz"
    dead = tmp_path / ".w.npz.graphspec-tmp-dead"
    dead.write_bytes(b"half")
    other = tmp_path / ".x.npz.graphspec-tmp-other"       # another target's: not ours
    other.write_bytes(b"half")
    with files.atomic_write(target) as handle:              # a write starts by clearing
        assert not dead.exists() and other.exists()
        live = [p for p in tmp_path.iterdir() if p.name.startswith(".w.npz.graphspec-tmp-")]
        assert len(live) == 1
        dead.write_bytes(b"half")
        time.sleep(0.01)
        assert [Path(p) for p in files.remove_stale_temps(target)] == [dead]
        assert live[0].exists()                             # locked by a live writer: kept
        handle.write(b"new")
    assert target.read_bytes() == b"new" and other.exists()


def test_fifty_sigkills_during_checkpoint_writes_leave_a_whole_resumable_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, str(HERE / "kill_trials.py"), str(tmp_path), "50",
                             "7"], env=_env(), capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{report['trials']} kills, {report['killed_with_temp_left']} mid-write, "
          f"epochs reached {report['epochs'][-1:]}")
    assert report["trials"] == 50
    assert report["problems"] == [], report["last_child_output"]
    # every kill came after a checkpoint of its run (else the runs fail: see their output)
    assert len(report["epochs"]) == 50, report["last_child_output"]
