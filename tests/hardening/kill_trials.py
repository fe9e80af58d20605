"""SIGKILL a training run at random moments, many times; report what each kill left.

Run as ``python kill_trials.py WORKDIR TRIALS SEED``. The process imports graphspec
once and forks each run, so a trial costs milliseconds, not an interpreter start. Each
trial: a forked child runs ``graphspec train`` with a checkpoint after every (tiny)
epoch, continuing from the last checkpoint; once it has written a checkpoint it is
killed after a random delay, and as an epoch here is mostly the checkpoint write, many
kills land in the middle of one. Then this process checks what is on
disk and resumes in-process. Prints one JSON object.
"""
import contextlib
import json
import os
import random
import signal
import sys
import time

import numpy as np

from graphspec.cli import main
from graphspec.io.files import TEMP_MARK

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
    optimizer: {type: adam, learning_rate: 0.01}
    batch_size: 16
"""
KEYS = {"h/kernel", "h/bias", "out/kernel", "out/bias", "trainer/epoch", "trainer/seed",
        "trainer/config", "trainer/progress"}


def train(spec, data, out, ck, epochs, resume):
    argv = ["train", spec, "--data", data, "-o", out, "--checkpoint", ck, "--seed", "0",
            "--epochs", str(epochs)] + (["--resume"] if resume else [])
    try:
        main(argv, standalone_mode=False)
        return 0
    except SystemExit as exc:
        return exc.code


EXPECTED = {"spec.yaml", "data.npz", "w.npz", "ck", "warm", "checkpoint.npz", "child.log"}


def leftovers(since, *directories):
    """Files no run should leave (temp files, locks) older than ``since``."""
    found = []
    for directory in directories:
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if name not in EXPECTED and os.path.getmtime(path) < since:
                found.append(name)
    return sorted(found)


def identity(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def checkpoint_epoch(path):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}   # reads every member
    missing = KEYS - set(arrays)
    assert not missing, f"checkpoint lacks {sorted(missing)}"
    for key in ("trainer/config", "trainer/progress"):        # JSON stored as uint8
        json.loads(arrays[key].tobytes().decode("utf-8"))
    return int(arrays["trainer/epoch"])


def main_loop(work, trials, seed):
    rng = random.Random(seed)
    spec, data = os.path.join(work, "spec.yaml"), os.path.join(work, "data.npz")
    out, ck = os.path.join(work, "w.npz"), os.path.join(work, "ck")
    with open(spec, "w") as handle:
        handle.write(SPEC)
    gen = np.random.default_rng(0)
    np.savez(data, x=gen.normal(size=(16, 4)).astype(np.float32), y=gen.integers(0, 3, 16))
    checkpoint = os.path.join(ck, "checkpoint.npz")
    # One whole run first: every module a run imports is then loaded before the forks,
    # so the children start training at once and the kills land among the epochs.
    warm = os.path.join(work, "warm")
    os.mkdir(warm)
    train(spec, data, os.path.join(warm, "w.npz"), warm, 1, False)
    report = {"trials": 0, "killed_with_temp_left": 0, "epochs": [], "problems": [],
              "last_child_output": ""}
    previous = 0
    for _ in range(trials):
        resume = os.path.exists(checkpoint)
        pid = os.fork()
        if pid == 0:                                   # the run to be killed
            with open(os.path.join(work, "child.log"), "w") as sink:
                os.dup2(sink.fileno(), 1)
                os.dup2(sink.fileno(), 2)
            train(spec, data, out, ck, 100000, resume)
            os._exit(0)
        # Kill while the run is in its epoch loop, however loaded the machine is: once
        # it has renamed a new checkpoint into place, then after a random delay.
        before, deadline = identity(checkpoint), time.monotonic() + 30
        while identity(checkpoint) == before and time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                break                                  # it ended on its own: an error
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.03))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        report["trials"] += 1
        with open(os.path.join(work, "child.log")) as log:
            report["last_child_output"] = log.read()[-300:]
        if os.path.isdir(ck) and any(TEMP_MARK in n for n in os.listdir(ck)):
            report["killed_with_temp_left"] += 1
        if not os.path.exists(checkpoint):
            if previous:
                report["problems"].append(f"checkpoint of epoch {previous} vanished")
            continue
        try:
            epoch = checkpoint_epoch(checkpoint)      # the previous one, or the new one
        except Exception as exc:                       # noqa: BLE001 - reported, then failed
            report["problems"].append(f"unloadable checkpoint: {exc!r}")
            break
        if epoch < previous:
            report["problems"].append(f"checkpoint went back from epoch {previous} to {epoch}")
        started = time.time()
        code = train(spec, data, out, ck, epoch + 1, True)     # resumable
        if code not in (0, None):
            report["problems"].append(f"--resume from epoch {epoch} exited {code}")
        elif checkpoint_epoch(checkpoint) != epoch + 1:
            report["problems"].append(f"--resume from epoch {epoch} did not reach {epoch + 1}")
        stale = leftovers(started, ck, work)
        if stale:
            report["problems"].append(f"left after a resumed run: {stale}")
        previous = epoch + 1
        report["epochs"].append(previous)
    print(json.dumps(report))


if __name__ == "__main__":
    main_loop(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
