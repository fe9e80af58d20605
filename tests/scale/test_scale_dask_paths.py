"""Dask workers get absolute input paths (a worker started in another directory reads
the same files), and a worker that cannot open one says so in one line."""
import logging
import os

import numpy as np
import pytest
from scale_util import digits_like, mlp, save_dir

from graphspec.engines import dask_engine
from graphspec.errors import InputError
from graphspec.io.npystream import open_npy

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    active = distributed.Client(cluster)
    elsewhere = str(tmp_path_factory.mktemp("worker-cwd"))
    active.run(os.chdir, elsewhere)          # as a worker started in another directory
    yield active
    active.close()
    cluster.close()


def test_relative_paths_reach_workers_in_another_directory(client, tmp_path, monkeypatch):
    from graphspec.cli.scale_commands import run_evaluate, run_predict
    data = digits_like(300)
    save_dir(tmp_path / "data", data)
    monkeypatch.chdir(tmp_path)
    graph = mlp()
    address = client.scheduler.address
    written = run_predict(graph.model(), {"pixels": os.path.join("data", "pixels.npy")},
                          "out.npy", engine="dask", batch_size=50, chunk_rows=100,
                          scheduler=address)
    expected = graph.model().predict(data["pixels"], batch_size=50)["digit"]
    assert np.array_equal(np.load(written["digit"]), expected)
    result = run_evaluate(graph, "data", engine="dask", batch_size=50, chunk_rows=100,
                          scheduler=address)
    assert set(result) >= {"loss"}


def test_a_worker_that_cannot_open_an_input_says_so(client, tmp_path):
    np.save(tmp_path / "pixels.npy", digits_like(100)["pixels"])
    source = open_npy(tmp_path / "pixels.npy")
    os.unlink(tmp_path / "pixels.npy")           # the header was read here, not there
    with pytest.raises(InputError, match=r"a Dask worker cannot open .*pixels\.npy: inputs "
                                         r"must be readable at the same path on every "
                                         r"worker"):
        dask_engine.predict(mlp().model(), {"pixels": source}, None, batch_size=50,
                            client=client, retries=0, timeout=60)
