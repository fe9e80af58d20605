"""The Dask engine on a real LocalCluster (2 worker processes): the same bits as the
embedded engine, recovery from a killed worker, one clear error for a bad chunk, and
sweeps as tasks. One cluster for the module; every run has a timeout, so a failure
shows as an error, never as a hung test."""
import os
import signal
import time

import numpy as np
import pytest
from click.testing import CliRunner
from scale_util import digits_like, mlp, save_dir, tiny_data, tiny_spec

from graphspec.engines import dask_engine, embedded, sweep
from graphspec.engines.bundle import ModelBundle, compiled_keys
from graphspec.errors import InputError
from graphspec.train.job import build_job
from graphspec.train.trainer import Trainer

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

TIMEOUT = 60


@pytest.fixture(scope="module")
def client():
    import logging
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    active = distributed.Client(cluster)
    yield active
    active.close()
    cluster.close()


@pytest.fixture
def digits(tmp_path):
    data = digits_like(1000)
    return data, save_dir(tmp_path / "data", data)


def test_predict_equals_embedded_bit_for_bit(client, digits, tmp_path):
    # Bit-equality needs the same batches, not only the same rows: a matrix product
    # over 32 rows and over 8 rows can sum a row's terms in a different order (BLAS
    # chooses kernels by shape), changing last bits. Chunks are whole batches (96 = 3 x
    # 32; 100 is rounded up to 128), so each worker runs exactly the embedded batches.
    data, directory = digits
    model = mlp().model()
    inputs = {"pixels": str(directory / "pixels.npy")}
    embedded.predict(model, inputs, tmp_path / "embedded.npy", batch_size=32)
    expected = np.load(tmp_path / "embedded.npy")
    for chunk_rows in (96, 100):
        out = tmp_path / f"dask-{chunk_rows}.npy"
        dask_engine.predict(model, inputs, out, batch_size=32, chunk_rows=chunk_rows,
                            client=client, timeout=TIMEOUT)
        got = np.load(out)
        assert got.dtype == np.float32 and np.array_equal(got, expected)
    # In-memory arrays travel with their chunks; the answer is the same.
    in_memory = dask_engine.predict(model, data["pixels"], None, batch_size=32,
                                    chunk_rows=64, client=client, timeout=TIMEOUT)
    assert np.array_equal(in_memory["digit"], expected)
    # The bundle went to each worker once and was compiled once there, not per chunk.
    key = ModelBundle.from_model(model).key
    per_worker = client.run(compiled_keys)
    assert [keys.count(key) for keys in per_worker.values()] == [1, 1]


def test_seeded_sampling_model_is_the_same_on_any_engine_and_chunking(client):
    # The VAE samples its latent code at inference; with a seed, the batch at row r
    # draws from default_rng([seed, r]), wherever and in whatever chunk it runs.
    import graphspec.api as api
    from scale_util import ROOT
    model = api.load(ROOT / "specs" / "vae.yaml", seed=0).models["vae"]
    x = np.random.default_rng(0).random((300, 64))
    local = embedded.predict(model, x, None, batch_size=20, seed=3)["reconstruction"]
    assert not np.array_equal(local, embedded.predict(model, x, None, batch_size=20,
                                                      seed=4)["reconstruction"])
    remote = dask_engine.predict(model, x, None, batch_size=20, chunk_rows=60, seed=3,
                                 client=client, timeout=TIMEOUT)["reconstruction"]
    assert np.array_equal(remote, local)


def test_evaluate_equals_embedded_and_trainer_exactly(client, digits):
    data, directory = digits
    graph = mlp()
    trainer = Trainer(graph, build_job(graph))
    expected = trainer.evaluate(data, 32)
    sources = {n: str(directory / f"{n}.npy") for n in data}
    assert embedded.evaluate(trainer, sources, 32) == expected
    got = dask_engine.evaluate(graph.model(), sources, 32, chunk_rows=160, client=client,
                               timeout=TIMEOUT)
    assert got == expected


def test_killed_worker_still_gives_every_row_once(client, digits, tmp_path):
    data, directory = digits
    marker = tmp_path / "killed-once"

    class KillOnce(distributed.WorkerPlugin):
        """Kill this worker's process as it starts the first chunk task (once, by a
        marker file, across all workers): a crash mid-run, as an OOM kill would be."""

        def __init__(self, path):
            self.path = path

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and "predict_chunk" in str(key) and \
                    not os.path.exists(self.path):
                open(self.path, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)

    client.register_plugin(KillOnce(str(marker)), name="kill-once")
    try:
        model = mlp().model()
        out = tmp_path / "digit.npy"
        dask_engine.predict(model, {"pixels": str(directory / "pixels.npy")}, out,
                            batch_size=32, chunk_rows=64, client=client, timeout=TIMEOUT)
    finally:
        client.unregister_worker_plugin("kill-once")
        client.wait_for_workers(2, timeout=TIMEOUT)
    assert marker.exists()              # a worker really died mid-run
    expected = model.predict(data["pixels"], batch_size=32)["digit"]
    got = np.load(out)
    assert got.shape == expected.shape and np.array_equal(got, expected)


def test_bad_chunk_is_one_clear_error_not_a_hang(client, tmp_path):
    model = mlp().model()
    x = digits_like(320)["pixels"]
    lazy = da.from_array(x, chunks=(64, 64))

    def narrow_third(block, block_info=None):
        return block[:, :63] if block_info[0]["chunk-location"][0] == 2 else block
    bad = lazy.map_blocks(narrow_third, dtype=x.dtype)   # still claims (320, 64)
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        dask_engine.predict(model, {"pixels": bad}, tmp_path / "digit.npy", batch_size=32,
                            chunk_rows=64, client=client, timeout=TIMEOUT)
    message = str(caught.value)
    assert "rows 128-192" in message and "expects shape" in message and "\n" not in message
    assert time.monotonic() - started < TIMEOUT / 2
    assert list(tmp_path.iterdir()) == []                # nothing half-written
    short = lazy.map_blocks(lambda block, block_info=None: block[:-1] if block_info[0][
        "chunk-location"][0] == 1 else block, dtype=x.dtype)
    with pytest.raises(InputError, match=r"^rows 64-128: input 'pixels' has shape \(63, 64\) "
                                         r"in this chunk, expected 64 rows$"):
        dask_engine.predict(model, {"pixels": short}, None, batch_size=32, chunk_rows=64,
                            client=client, timeout=TIMEOUT)
    x[200, 3] = np.inf
    with pytest.raises(InputError, match="rows 192-256.*NaN or Inf"):
        dask_engine.predict(model, x, None, batch_size=32, chunk_rows=64, client=client,
                            timeout=TIMEOUT)


def test_sweep_on_dask_equals_embedded(client, tmp_path):
    spec, data = tiny_spec(tmp_path), tiny_data()
    grid = ["lr=0.001,0.03", "units=4,16"]
    local = sweep.sweep(spec, data, grid, seed=5)
    remote = sweep.sweep(spec, data, grid, seed=5, engine="dask", client=client)

    def strip(report):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in report["results"]]
    assert strip(remote) == strip(local)
    assert [r["rank"] for r in remote["results"]] == [1, 2, 3, 4]


def test_sweep_command_against_a_scheduler_address(client, tmp_path):
    from graphspec.cli.scale_commands import sweep as sweep_command
    spec = tiny_spec(tmp_path)
    save_dir(tmp_path / "data", tiny_data())
    address = client.scheduler.address
    result = CliRunner().invoke(sweep_command, [
        str(spec), "--data", str(tmp_path / "data"), "--set", "lr=0.001,0.03",
        "--set", "units=4,16", "--epochs", "2", "--engine", "dask", "--scheduler", address,
        "-o", str(tmp_path / "results.json")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:4] == ["rank", "lr", "units", "val_loss"]
    assert (tmp_path / "results.json").exists()


def test_runners_against_a_scheduler_address(client, digits, tmp_path):
    from graphspec.cli.scale_commands import run_evaluate, run_predict
    data, directory = digits
    graph, address = mlp(), client.scheduler.address
    written = run_predict(graph.model(), {"pixels": str(directory / "pixels.npy")},
                          f"{tmp_path / 'out'}/", engine="dask", batch_size=50,
                          chunk_rows=200, scheduler=address)
    expected = graph.model().predict(data["pixels"], batch_size=50)["digit"]
    assert np.array_equal(np.load(written["digit"]), expected)
    trainer = Trainer(graph, build_job(graph))
    assert run_evaluate(graph, directory, engine="dask", batch_size=50, chunk_rows=200,
                        scheduler=address) == trainer.evaluate(data, 50)
    bad = dict(data, digit=data["digit"].astype(float))
    bad["digit"][777] = np.nan
    save_dir(tmp_path / "bad", bad)
    with pytest.raises(InputError, match=r"bad: rows 600-800: batch of rows 750..799: target "
                                         r"'digit' .*NaN or Inf"):
        run_evaluate(graph, tmp_path / "bad", engine="dask", batch_size=50, chunk_rows=200,
                     scheduler=address)
