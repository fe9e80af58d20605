"""Training streamed from memory-mapped .npy files (issue 12, "Larger than memory").

- data that fits one shuffle block trains bit for bit as the same arrays in memory
  (library and ``graphspec train --data DIR/``);
- data larger than a block (a small block here, through loop.SHUFFLE_BLOCK_VALUES) is
  block-shuffled: every row once per epoch, blocks contiguous, the same run for the same
  seed, and a run interrupted mid-epoch and resumed reaches the same weights;
- a bad value in a streamed batch is one line naming the file and the absolute row;
- a subprocess under an address-space limit smaller than the data trains on it and gets
  the weights an unlimited process gets.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from scale_util import MLP_SPEC, save_dir, tiny_data, tiny_spec

import graphspec.api as api
from graphspec.cli import main
from graphspec.errors import TrainingInterrupted
from graphspec.io.npystream import open_npy_dir
from graphspec.train import loop
from graphspec.train.job import build_job
from graphspec.train.trainer import DataError, Trainer

ROWS = 300          # tiny spec: 25 % validation -> 225 training rows, batch 16


def _fit(spec, data, **kwargs):
    graph = api.load(spec, seed=0)
    trainer = Trainer(graph, build_job(graph, None, None, {}))
    history = trainer.fit(data, verbose=False, **kwargs)
    return history, {k: v.data.copy() for k, v in graph.weights().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def tiny(tmp_path):
    arrays = tiny_data(ROWS)
    return tiny_spec(tmp_path), arrays, save_dir(tmp_path / "data", arrays)


# -- one block: the in-memory numbers ---------------------------------------------------
def test_data_within_one_block_trains_bit_for_bit_as_in_memory(tiny):
    spec, arrays, directory = tiny
    assert loop.shuffle_block_rows(4 + 1, 16) >= ROWS      # really the one-block case
    memory = _fit(spec, arrays, seed=5)
    streamed = _fit(spec, open_npy_dir(directory), seed=5)
    mapped = _fit(spec, {k: np.load(directory / f"{k}.npy", mmap_mode="r") for k in arrays},
                  seed=5)
    for history, weights in (streamed, mapped):
        assert history == memory[0]             # every epoch's loss, accuracy, val_*
        assert _same_weights(weights, memory[1])
    assert "val_loss" in memory[0] and len(memory[0]["loss"]) == 3


def test_streamed_evaluate_equals_in_memory(tiny):
    spec, arrays, directory = tiny
    graph = api.load(spec, seed=0)
    trainer = Trainer(graph, build_job(graph, None, None, {}))
    assert trainer.evaluate(open_npy_dir(directory), 32) == trainer.evaluate(arrays, 32)


def test_train_cli_on_a_directory_equals_the_npz(tiny, tmp_path):
    spec, arrays, directory = tiny
    np.savez(tmp_path / "data.npz", **arrays)
    outputs = {}
    for name, data in (("npz", tmp_path / "data.npz"), ("dir", directory)):
        result = CliRunner().invoke(main, [
            "train", str(spec), "--data", str(data), "-o", str(tmp_path / f"{name}.npz"),
            "--history", str(tmp_path / f"{name}.json"), "--seed", "0", "--epochs", "2"])
        assert result.exit_code == 0, result.output
        with np.load(tmp_path / f"{name}.npz") as weights:
            outputs[name] = ({k: weights[k] for k in weights.files
                              if not k.startswith("__")},
                             json.loads((tmp_path / f"{name}.json").read_text()))
    assert outputs["dir"][1] == outputs["npz"][1]
    assert _same_weights(outputs["dir"][0], outputs["npz"][0])


# -- larger than a block ------------------------------------------------------------------
@pytest.fixture
def small_blocks(monkeypatch):
    """5 values per row (x: 4, y: 1): 100 values -> 20 rows -> 32 (two batches of 16)."""
    monkeypatch.setattr(loop, "SHUFFLE_BLOCK_VALUES", 100)
    assert loop.shuffle_block_rows(5, 16) == 32


def test_block_order_reads_each_row_once_block_by_block():
    rows, block = 225, 32
    orders = []
    for seed, epoch in ((5, 0), (5, 0), (6, 0), (5, 1)):
        order = loop.EpochOrder(np.random.default_rng([seed, epoch]), rows, 16, True, block,
                                (seed, epoch))
        orders.append(np.concatenate([order.batch(b) for b in range(order.steps())]))
    assert np.array_equal(orders[0], orders[1])
    # Another seed or epoch: the rows inside a block come in another order too.
    first_block = [o[o < block] for o in orders]
    assert not np.array_equal(first_block[0], first_block[2])
    assert not np.array_equal(first_block[0], first_block[3])
    order = orders[0]
    assert sorted(order) == list(range(rows))
    blocks = order // block                 # each block's rows are consecutive in the epoch
    runs = blocks[np.r_[True, blocks[1:] != blocks[:-1]]]
    assert sorted(runs) == list(range(-(-rows // block)))
    assert not np.array_equal(runs, np.sort(runs))      # blocks shuffled...
    assert not np.array_equal(order[:block], np.sort(order[:block]))   # ...rows too


def test_larger_than_a_block_is_reproducible_and_block_shuffled(tiny, small_blocks):
    spec, arrays, directory = tiny
    first = _fit(spec, open_npy_dir(directory), seed=5)
    again = _fit(spec, open_npy_dir(directory), seed=5)
    other = _fit(spec, open_npy_dir(directory), seed=6)
    memory = _fit(spec, arrays, seed=5)         # in memory: one permutation of all rows
    assert first[0] == again[0] and _same_weights(first[1], again[1])
    assert not _same_weights(first[1], other[1])
    assert not _same_weights(first[1], memory[1])       # the block order was used
    assert all(np.isfinite(first[0]["loss"])) and first[0]["loss"][-1] < first[0]["loss"][0]


def test_resume_mid_epoch_reaches_the_uninterrupted_weights(tiny, small_blocks, tmp_path,
                                                            monkeypatch):
    spec, _, directory = tiny
    straight = _fit(spec, open_npy_dir(directory), seed=5, epochs=3)
    step, calls = Trainer._step, []

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 15 + 5:        # epoch 2 (15 steps each), batch 6
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", interrupting)
    with pytest.raises(TrainingInterrupted):
        _fit(spec, open_npy_dir(directory), seed=5, epochs=3,
             checkpoint_dir=tmp_path / "ck")
    monkeypatch.setattr(Trainer, "_step", step)
    with np.load(tmp_path / "ck" / "checkpoint.npz") as saved:
        config = json.loads(saved["trainer/config"].tobytes())
        progress = json.loads(saved["trainer/progress"].tobytes())
    assert config["shuffle_block_rows"] == 32
    assert progress["position"]["epoch"] == 1 and progress["position"]["batch"] == 4
    # The block size is the checkpoint's, whatever the constant is when resuming.
    monkeypatch.setattr(loop, "SHUFFLE_BLOCK_VALUES", 1 << 24)
    graph = api.load(spec, seed=99)             # other initial weights: all from the file
    trainer = Trainer(graph, build_job(graph, None, None, {}))
    blocks, reads = loop.CastRows.blocks, []
    monkeypatch.setattr(loop.CastRows, "blocks",
                        lambda self: reads.append(1) or blocks(self))
    history = trainer.fit(open_npy_dir(directory), checkpoint_dir=tmp_path / "ck",
                          resume=True, verbose=False)
    assert len(reads) == 2          # x and y hashed once each (checked, then recorded)
    assert history == straight[0]
    assert _same_weights({k: v.data for k, v in graph.weights().items()}, straight[1])


def test_resume_refuses_changed_streamed_data(tiny, tmp_path):
    spec, arrays, directory = tiny
    _fit(spec, open_npy_dir(directory), seed=5, epochs=1, checkpoint_dir=tmp_path / "ck")
    x = arrays["x"].copy()
    x[250, 2] += 1.0
    np.save(directory / "x.npy", x)
    graph = api.load(spec, seed=0)
    trainer = Trainer(graph, build_job(graph, None, None, {}))
    with pytest.raises(Exception, match="data array 'x'.*other values"):
        trainer.fit(open_npy_dir(directory), epochs=2, checkpoint_dir=tmp_path / "ck",
                    resume=True, verbose=False)


# -- bad values: one line, the file and the row ----------------------------------------------
@pytest.mark.parametrize("row", [123, 290])         # a training row; a validation row
def test_nan_in_a_streamed_batch_names_the_file_and_row(tiny, tmp_path, small_blocks, row):
    spec, arrays, directory = tiny
    x = arrays["x"].copy()
    x[row, 3] = np.nan
    np.save(directory / "x.npy", x)
    result = CliRunner().invoke(main, ["train", str(spec), "--data", str(directory), "-o",
                                       str(tmp_path / "w.npz"), "--seed", "0"])
    assert result.exit_code != 0 and not os.path.exists(tmp_path / "w.npz")
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(directory / "x.npy") in lines[0]
    assert f"NaN or Inf (nan) at row {row}, position ({row}, 3)" in lines[0]


def test_bad_headers_are_refused_before_training(tiny):
    spec, arrays, directory = tiny
    np.save(directory / "y.npy", arrays["y"][:-1])
    graph = api.load(spec, seed=0)
    trainer = Trainer(graph, build_job(graph, None, None, {}))
    with pytest.raises(DataError, match=r"different numbers of rows: x 300 .*y 299"):
        trainer.fit(open_npy_dir(directory), verbose=False)
    np.save(directory / "x.npy", np.zeros((ROWS, 5)))
    with pytest.raises(DataError, match=r"x.npy: input 'x' .* expects shape \(None, 4\)"):
        trainer.fit(open_npy_dir(directory), verbose=False)


# -- larger than the address space -------------------------------------------------------
LIMIT_MB = 300
BIG_ROWS, DIM = 25_600, 4096        # 420 MB of float32 pixels: 7 blocks of 4096 rows

CHILD = """
import resource, sys
limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numpy as np
try:
    np.load(sys.argv[2] + "/pixels.npy")
    print("in-memory: loaded")
except MemoryError:
    print("in-memory: MemoryError")
from graphspec.cli import main
sys.argv = ["graphspec"] + sys.argv[3:]
try:
    main()
finally:
    peak = int(open("/proc/self/status").read().split("VmPeak:")[1].split()[0]) >> 10
    print(f"VmPeak {peak} MB, limit {limit >> 20} MB")
"""


def _write_big(directory):
    directory.mkdir()
    out = np.lib.format.open_memmap(directory / "pixels.npy", mode="w+", dtype=np.float32,
                                    shape=(BIG_ROWS, DIM))
    ramp = np.linspace(-1.0, 1.0, DIM, dtype=np.float32)
    for start in range(0, BIG_ROWS, 4096):
        rows = np.arange(start, min(start + 4096, BIG_ROWS), dtype=np.float32)
        out[start:start + len(rows)] = ramp[None, :] * np.sin(rows)[:, None]
    out.flush()
    del out
    np.save(directory / "digit.npy", (np.arange(BIG_ROWS) * 7919 % 10).astype(np.int64))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics")
def test_training_on_data_larger_than_the_address_space_limit(tmp_path):
    data = tmp_path / "big"
    _write_big(data)
    assert os.path.getsize(data / "pixels.npy") > (LIMIT_MB << 20)
    # Both runs start from one weights file (not each from its own initialization).
    graph = api.load(MLP_SPEC, seed=3, params={"input_dim": DIM})
    graph.save_weights(tmp_path / "init.npz")
    args = ["train", str(MLP_SPEC), "--set", f"input_dim={DIM}", "--data", str(data),
            "--epochs", "1", "--batch-size", "256", "--validation-split", "0.1",
            "--seed", "3", "--checkpoint", str(tmp_path / "ck"),
            "--weights", str(tmp_path / "init.npz")]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", CHILD, str(LIMIT_MB), str(data), *args,
                          "-o", str(tmp_path / "limited.npz")],
                         capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stdout[-1000:] + run.stderr[-2000:]
    assert "in-memory: MemoryError" in run.stdout       # the limit really is too small
    assert "trained 'mlp' for 1 epoch(s)" in run.stdout
    # The same run without a limit, in this process: the same weights, bit for bit.
    trainer = Trainer(graph, build_job(graph, None, None, {}))
    history = trainer.fit(open_npy_dir(data), epochs=1, batch_size=256,
                          validation_split=0.1, seed=3, verbose=False)
    assert np.isfinite(history["val_loss"][0])
    with np.load(tmp_path / "limited.npz") as limited:
        for key, var in graph.weights().items():
            assert np.array_equal(limited[key], var.data), key


def test_a_run_started_from_the_npz_resumes_from_the_directory(tiny, tmp_path):
    """The fingerprint of streamed data is the in-memory one (same values, same digest),
    and the resumed run keeps the checkpoint's order: the same weights as never stopping."""
    spec, arrays, directory = tiny
    np.savez(tmp_path / "data.npz", **arrays)

    def train(data, out, *extra):
        result = CliRunner().invoke(main, ["train", str(spec), "--data", str(data), "-o",
                                           str(tmp_path / out), "--seed", "0", *extra])
        assert result.exit_code == 0, result.output
        with np.load(tmp_path / out) as weights:
            return {k: weights[k] for k in weights.files if not k.startswith("__")}

    straight = train(tmp_path / "data.npz", "straight.npz", "--epochs", "3")
    train(tmp_path / "data.npz", "first.npz", "--epochs", "1", "--checkpoint",
          str(tmp_path / "ck"))
    resumed = train(directory, "resumed.npz", "--epochs", "3", "--checkpoint",
                    str(tmp_path / "ck"), "--resume")
    assert _same_weights(resumed, straight)
