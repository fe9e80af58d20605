"""Larger than memory: a 600 MB input predicted by a process whose address space is
limited to 300 MB — too small to load the input at all — gives exactly the in-memory
result. (RLIMIT_AS bounds virtual memory, so this also proves the engine never maps
the whole file: ``np.load(mmap_mode="r")`` of it would fail too.)"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scale_util import MLP_SPEC

import graphspec.api as api

LIMIT_MB = 300          # numpy + graphspec + one block fit (VmPeak ~200 MB measured)
ROWS, DIM = 38_400, 4096
BATCH = 256


def _write_input(path):
    """600 MB of float32, made cheaply block by block (a ramp scaled per row)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(ROWS, DIM))
    ramp = np.linspace(-1.0, 1.0, DIM, dtype=np.float32)
    for start in range(0, ROWS, 4096):
        rows = np.arange(start, min(start + 4096, ROWS), dtype=np.float32)
        out[start:start + len(rows)] = ramp[None, :] * np.sin(rows)[:, None]
    out.flush()
    del out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics")
def test_input_larger_than_the_memory_limit_streams_to_the_exact_result(tmp_path):
    source, output = tmp_path / "pixels.npy", tmp_path / "digit.npy"
    _write_input(source)
    assert os.path.getsize(source) > 2 * (LIMIT_MB << 20)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    child = Path(__file__).with_name("memlimit_child.py")
    run = subprocess.run([sys.executable, str(child), str(LIMIT_MB), str(MLP_SPEC),
                          str(DIM), str(source), str(output), str(BATCH)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "in-memory: MemoryError" in run.stdout      # the limit really is too small
    assert "streamed: ok" in run.stdout
    model = api.load(MLP_SPEC, seed=0, params={"input_dim": DIM}).model()
    expected = model.predict(np.load(source, mmap_mode="r"), batch_size=BATCH)["digit"]
    got = np.load(output)
    assert got.shape == (ROWS, 10) and np.array_equal(got, expected)
