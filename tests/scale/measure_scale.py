"""Scale measurements, one process per case (not a test: run by hand, on a quiet box).

    python tests/scale/measure_scale.py gen /tmp/x2m.npy 2000000 64
    python tests/scale/measure_scale.py embedded /tmp/x2m.npy /tmp/e.npy 32 300
    python tests/scale/measure_scale.py dask /tmp/x2m.npy /tmp/d.npy 32 2

``gen PATH ROWS DIM`` writes a float32 .npy cheaply; ``embedded PATH OUT BATCH
[LIMIT_MB]`` predicts with the MLP of specs/mlp.yaml (input_dim = DIM) in this process,
under an address-space limit if given; ``dask PATH OUT BATCH WORKERS`` does it on a
LocalCluster of WORKERS single-threaded processes. Each prints rows/s and peak RSS
(client and every worker). Set OPENBLAS_NUM_THREADS=1 for the embedded case on a busy
machine: multi-threaded BLAS on oversubscribed cores ran 14x slower (measured).
"""
import resource
import sys
import time
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "specs" / "mlp.yaml"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_peak_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmPeak:")[1].split()[0]) / 1024


def generate(path, rows, dim):
    import numpy as np
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    ramp = np.linspace(-1, 1, dim, dtype=np.float32)
    step = max(1, (64 << 20) // (4 * dim))
    for start in range(0, rows, step):
        index = np.arange(start, min(start + step, rows), dtype=np.float32)
        out[start:start + len(index)] = ramp[None, :] * np.sin(index)[:, None]
    out.flush()


def embedded_case(model, path, output, batch, rows, dim):
    from graphspec.engines import embedded
    started = time.perf_counter()
    embedded.predict(model, {"pixels": path}, output, batch_size=batch, progress=False)
    seconds = time.perf_counter() - started
    print(f"embedded rows={rows} dim={dim} batch={batch}: {seconds:.2f} s, "
          f"{rows / seconds:,.0f} rows/s, peak RSS {peak_mb():.0f} MB, VmPeak "
          f"{vm_peak_mb():.0f} MB", flush=True)


def dask_case(model, path, output, batch, rows, dim, workers):
    import logging

    import distributed

    from graphspec.engines import dask_engine
    started = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    startup = time.perf_counter() - started
    started = time.perf_counter()
    dask_engine.predict(model, {"pixels": path}, output, batch_size=batch, client=client,
                        progress=False)
    seconds = time.perf_counter() - started
    worker_peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(f"dask x{workers} rows={rows} dim={dim} batch={batch}: {seconds:.2f} s, "
          f"{rows / seconds:,.0f} rows/s (+{startup:.1f} s cluster start), client peak RSS "
          f"{peak_mb():.0f} MB, worker peak RSS " +
          ", ".join(f"{v / 1024:.0f} MB" for v in worker_peaks.values()), flush=True)
    client.close()
    cluster.close()


def main(argv):
    case = argv[1]
    if case == "gen":
        generate(argv[2], int(argv[3]), int(argv[4]))
        return
    if case == "embedded" and len(argv) > 5:     # before numpy is imported, on purpose
        limit = int(argv[5]) << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import graphspec.api as api
    from graphspec.io.npystream import open_npy
    path, output, batch = argv[2], argv[3], int(argv[4])
    rows, dim = open_npy(path).shape
    model = api.load(SPEC, seed=0, params={"input_dim": dim}).model()
    if case == "embedded":
        embedded_case(model, path, output, batch, rows, dim)
    else:
        dask_case(model, path, output, batch, rows, dim, int(argv[5]))


if __name__ == "__main__":       # dask's worker processes re-import this module
    main(sys.argv)
