"""The Dask engine: the embedded engine's per-chunk work, mapped over chunks on a cluster.

Inputs become dask arrays chunked along the batch axis (a ``.npy`` source is read by
each chunk on its worker, a window of its own rows; a dask array is rechunked; an
in-memory array is sliced on the client). Each chunk runs
:func:`~graphspec.engines.embedded.predict_batches` or ``evaluate_rows`` — the very code
the embedded engine runs — on a model compiled on the worker from a
:class:`~.bundle.ModelBundle` shipped to every worker once per run (a worker plugin,
:mod:`~.dask_plugin`).

Chunks are a whole number of batches, so every batch is the one the embedded engine
would run and the outputs are the same bits (see ``chunk_size``). Results come back to
the client, which writes each into the output files at its own rows, in order of
arrival; at most a few chunks per worker are in flight, so memory stays
bounded on both sides. Dask handles scheduling and recovery: a task whose worker dies
is rerun elsewhere (the scheduler's ``allowed-failures``) and a task that raises is
retried ``retries`` times. A chunk whose data is wrong (shape, NaN) is not retried: it
comes back as one error, the other chunks are cancelled, nothing is written.

dask and distributed are imported inside these functions only: ``graphspec --help``
never pays for them, and without them the user gets one line saying what to install.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid

import numpy as np

from ..errors import GraphspecError, InputError
from ..io.npystream import NpySource
from ..runtime import executor
from . import embedded
from .bundle import ModelBundle, shipped
from .outputs import RowSink
from .progress import RowsProgress

CHUNK_BYTES = 32 << 20      # default input bytes per chunk (rounded to whole batches)
IN_FLIGHT_PER_WORKER = 3    # chunks submitted ahead per worker


def require_dask():
    """(dask, dask.array, distributed), or one line saying how to get them."""
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError:
        raise InputError("--engine dask needs the dask extra: pip install 'graphspec[dask]'") \
            from None
    return dask, da, distributed


class ChunkError(InputError):
    """A chunk's data was refused on a worker (the message names its rows)."""


class ChunkFailure:
    """A chunk whose data is wrong: returned, not raised, so Dask does not retry it."""

    def __init__(self, message: str):
        self.message = message


# -- the cluster -------------------------------------------------------------------------
@contextlib.contextmanager
def connect(scheduler: str | None = None, client=None, workers: int | None = None):
    """A distributed Client: ``client`` as given, one for ``scheduler`` (an address such
    as tcp://host:8786), or a LocalCluster of worker processes closed on exit."""
    if client is not None:
        yield client
        return
    _, _, distributed = require_dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start "
                             "one with `dask scheduler` and workers with `dask worker "
                             f"{scheduler}`, or drop --scheduler for a local cluster") from None
        try:
            yield client
        finally:
            client.close()
        return
    from distributed.deploy.spec import SpecCluster
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    known = set(SpecCluster._instances)
    cluster = client = None
    try:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
        yield client
    finally:
        _close_local(client, cluster, known, failing=sys.exc_info()[0] is not None)


def _close_local(client, cluster, known: set, failing: bool) -> None:
    """Close the run's local cluster. When the run is failing (Ctrl-C while the cluster
    starts, a worker that could not start), closing a half-started cluster may raise
    too: that is swallowed, and the cluster is taken off distributed's exit list, whose
    close at exit would otherwise print a traceback after "interrupted"."""
    from distributed.deploy.spec import SpecCluster
    started = [c for c in list(SpecCluster._instances) if c not in known]
    try:
        for closable in ([client] if client is not None else []) + \
                ([cluster] if cluster is not None else started):
            try:
                closable.close(timeout=10) if closable is not client else closable.close()
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                if not failing:
                    raise
    finally:
        if failing:
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                # Ctrl-C stopped the workers mid-start too: their tasks end in errors
                # nobody reads, which asyncio would log at exit ("Task exception was
                # never retrieved") under the "interrupted" line.
                logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            for leftover in started:
                SpecCluster._instances.discard(leftover)


def chunk_size(chunk_rows: int | None, batch_size: int, sources: dict) -> int:
    """Rows per chunk: a multiple of batch_size (given sizes are rounded up).

    Bit-equality with the embedded engine needs the same batches, not just the same
    rows: a matrix product over 32 rows and over 20 rows may add a row's terms in a
    different order (BLAS picks kernels and blocking by shape), and a row's outputs then
    differ in the last bits. Chunks made of whole batches starting at multiples of
    batch_size split the rows exactly where the embedded engine does.
    """
    if chunk_rows is None:
        row_bytes = sum(int(np.prod(s.shape[1:], dtype=np.int64)) * s.dtype.itemsize
                        for s in sources.values())
        return batch_size * max(1, CHUNK_BYTES // max(row_bytes * batch_size, 1))
    if int(chunk_rows) < 1:
        raise InputError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    return -(-int(chunk_rows) // batch_size) * batch_size


def _chunk_inputs(sources: dict, rows: int, chunk: int) -> list:
    """Per chunk, {name: delayed block or array slice} covering rows [i*chunk, ...)."""
    _, da, _ = require_dask()
    per_name, run = {}, uuid.uuid4().hex[:12]     # fresh read keys per run (as tasks')
    for name, source in sources.items():
        if isinstance(source, np.ndarray):
            per_name[name] = [source[s:s + chunk] for s in range(0, rows, chunk)]
            continue
        if not isinstance(source, da.Array):
            # The source itself is inlined into each chunk's read task: a path and a
            # header, never the data.
            source = da.from_array(source, chunks=(chunk,) + tuple(source.shape[1:]),
                                   asarray=True, lock=False, inline_array=True,
                                   name=f"graphspec-read-{name}-{run}")
        else:
            source = source.rechunk((chunk,) + tuple(source.shape[1:]))
        per_name[name] = list(source.to_delayed().reshape(-1))
    return [{name: blocks[i] for name, blocks in per_name.items()}
            for i in range(-(-rows // chunk))]


class WorkerSource(NpySource):
    """An NpySource shipped to workers under its absolute path: a worker started in
    another directory (a remote scheduler's) reads the same file, and one that cannot
    open it says so in a line that names the path and the requirement."""

    @classmethod
    def of(cls, source: NpySource) -> "WorkerSource":
        return cls(os.path.abspath(source.path), source.shape, source.dtype, source.offset)

    def rows(self, start: int, stop: int) -> np.ndarray:
        try:
            return super().rows(start, stop)
        except InputError:
            if not os.access(self.path, os.R_OK) or not os.path.isfile(self.path):
                raise InputError(f"a Dask worker cannot open {self.path}: inputs must be "
                                 "readable at the same path on every worker") from None
            raise


def _for_workers(sources: dict) -> dict:
    """Sources as shipped to workers: .npy files under absolute paths (WorkerSource)."""
    return {name: WorkerSource.of(source) if isinstance(source, NpySource) and
            not isinstance(source, WorkerSource) else source
            for name, source in sources.items()}


def _as_sources(data, names, what):
    """Sources as the embedded engine takes them, plus dask arrays (kept lazy)."""
    _, da, _ = require_dask()
    if isinstance(data, dict) and any(isinstance(v, da.Array) for v in data.values()):
        lazy = {k: v for k, v in data.items() if isinstance(v, da.Array)}
        rest = embedded.as_sources({k: v for k, v in data.items() if k not in lazy},
                                   [n for n in names if n not in lazy], what) \
            if len(lazy) < len(names) else {}
        sources = {n: lazy.get(n, rest.get(n)) for n in names}
        lengths = {n: int(s.shape[0]) for n, s in sources.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{what}: arrays have different numbers of rows: " +
                             ", ".join(f"{n} {r}" for n, r in lengths.items()))
        return sources
    return embedded.as_sources(data, names, what)


# -- the tasks (run on workers) ----------------------------------------------------------
def _check_block(name, block, start, stop):
    block = np.asarray(block)
    if block.ndim == 0 or len(block) != stop - start:
        raise InputError(f"input '{name}' has shape {block.shape} in this chunk, "
                         f"expected {stop - start} rows")
    return block


def predict_chunk(bundle_key: str, blocks: dict, start: int, stop: int,
                  batch_size: int, seed=None, allow_nonfinite: bool = False):
    """Outputs by name for rows start:stop, or a ChunkFailure for wrong data."""
    try:
        model = shipped(bundle_key).model()
        sources = {n: _check_block(n, b, start, stop) for n, b in blocks.items()}
        parts = [out for _, out in embedded.predict_batches(
            model, sources, batch_size, seed, start, allow_nonfinite)]
        return {name: np.concatenate([p[name] for p in parts])
                for name in model.output_names}
    except GraphspecError as exc:
        return ChunkFailure(f"rows {start}-{stop}: {exc}")


def evaluate_chunk(bundle_key: str, blocks: dict, start: int, stop: int,
                   batch_size: int, seed=None, allow_nonfinite: bool = False):
    """Per-batch (logs, rows) for rows start:stop, or a ChunkFailure for wrong data."""
    try:
        sources = {n: _check_block(n, b, start, stop) for n, b in blocks.items()}
        return list(embedded.evaluate_rows(shipped(bundle_key).trainer(), sources,
                                           batch_size, seed, start, allow_nonfinite))
    except GraphspecError as exc:
        return ChunkFailure(f"rows {start}-{stop}: {exc}")


# -- running chunks ------------------------------------------------------------------------
def _run_chunks(client, task, bundle, chunks: list, chunk: int, rows: int, options: tuple,
                retries: int, timeout, on_result, bar) -> None:
    """Ship ``bundle`` to every worker once, submit ``task`` per chunk (a few per worker
    ahead), hand each result to ``on_result(index, first_row, result)``; the first
    failure cancels the rest and is raised."""
    from .dask_plugin import ship
    with ship(client, bundle) as bundle_key:
        _submit_chunks(client, task, bundle_key, chunks, chunk, rows, options, retries,
                       timeout, on_result, bar)


def _submit_chunks(client, task, bundle_key, chunks, chunk, rows, options, retries,
                   timeout, on_result, bar) -> None:
    dask, _, distributed = require_dask()
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    pending = iter(range(len(chunks)))
    # Keys name the task and chunk and are new per run: a key reused with other data
    # would be served the old result by the scheduler.
    run = uuid.uuid4().hex[:12]
    # ``timeout`` bounds the whole run: a stuck cluster gives one line, not a hang.
    index_of, in_flight = {}, distributed.as_completed(timeout=timeout)

    def submit_next():
        i = next(pending, None)
        if i is None:
            return
        start, stop = i * chunk, min((i + 1) * chunk, rows)
        call = dask.delayed(task, pure=False)(bundle_key, chunks[i], start, stop, *options,
                                              dask_key_name=f"graphspec-{task.__name__}-"
                                                            f"{run}-{i}")
        future = client.compute(call, retries=retries)
        index_of[future.key] = (i, start, stop)
        in_flight.add(future)

    for _ in range(workers * IN_FLIGHT_PER_WORKER):
        submit_next()
    try:
        for future in in_flight:
            i, start, stop = index_of.pop(future.key)
            result = _result(future, start, stop, distributed)
            future.release()
            on_result(i, start, result)
            bar.advance(stop - start)
            submit_next()
    except TimeoutError:
        raise InputError(f"the Dask run did not finish within {timeout:g} s; the cluster "
                         "may be stuck or out of workers (see the `dask worker` logs)") \
            from None
    finally:
        for future in list(in_flight.futures):
            future.cancel()


def _result(future, start, stop, distributed):
    try:
        result = future.result()
    except distributed.KilledWorker:
        raise InputError(f"Dask workers died repeatedly running rows {start}-{stop} (out "
                         "of memory? see the worker logs); try a smaller --chunk-rows") from None
    except GraphspecError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line, the chunk named
        raise InputError(f"rows {start}-{stop} failed on a Dask worker: "
                         f"{type(exc).__name__}: {exc}") from None
    if isinstance(result, ChunkFailure):
        raise ChunkError(result.message)
    return result


# -- the engine ------------------------------------------------------------------------------
def _refuse_stateful(model) -> None:
    """Chunks run on any worker in any order; a stateful RNN needs its batches in order
    in one process."""
    stateful = [layer.name for layer in executor.stateful_layers(model)]
    if stateful:
        raise InputError(f"model '{model.name}' has stateful layers ({', '.join(stateful)}), "
                         "whose state runs from one batch to the next in order: run it with "
                         "the embedded engine (leave out --engine dask)")


def predict(model, inputs, output=None, batch_size: int = 32, chunk_rows: int | None = None,
            seed=None, scheduler: str | None = None, client=None, workers: int | None = None,
            retries: int = 2, timeout: float | None = None, progress: bool | None = None,
            stream=None, allow_nonfinite: bool = False) -> dict:
    """As :func:`graphspec.engines.embedded.predict`, each chunk a task on a cluster."""
    require_dask()
    _refuse_stateful(model)
    batch_size = embedded.check_batch_size(batch_size)
    sources = _as_sources(embedded.model_inputs(model, inputs), model.input_names,
                          f"model '{model.name}'")
    embedded.check_input_shapes(model, sources)
    sources = _for_workers(sources)
    rows = int(next(iter(sources.values())).shape[0])
    if rows == 0:
        raise InputError(f"the inputs of model '{model.name}' have no rows")
    chunk = chunk_size(chunk_rows, batch_size, sources)
    sink = RowSink(output, model.output_names, rows)     # bad output paths fail first
    bundle = ModelBundle.from_model(model)
    bar = RowsProgress("predict", rows, enabled=progress is not False, stream=stream)
    try:
        with connect(scheduler, client, workers) as active:
            _run_chunks(active, predict_chunk, bundle, _chunk_inputs(sources, rows, chunk),
                        chunk, rows, (batch_size, seed, allow_nonfinite), retries, timeout,
                        lambda i, start, result: sink.write(start, result), bar)
        result = sink.commit()
    except BaseException:
        sink.abort()
        raise
    bar.finish()
    return result


def evaluate(model, data, batch_size: int = 32, job_name: str | None = None,
             job_overrides: dict | None = None, chunk_rows: int | None = None, seed=None,
             scheduler: str | None = None, client=None, workers: int | None = None,
             retries: int = 2, timeout: float | None = None, progress: bool | None = None,
             stream=None, allow_nonfinite: bool = False) -> dict:
    """Loss and metrics of ``model`` under a training job, chunks on a cluster; the
    per-batch values are reduced in row order exactly as ``Trainer.evaluate`` does."""
    require_dask()
    from ..train.job import build_job
    from ..train.trainer import Trainer
    batch_size = embedded.check_batch_size(batch_size)
    trainer = Trainer(model.graph, build_job(model.graph, job_name, model.name,
                                             job_overrides or {}))
    names = model.input_names + [n for n in trainer.job.losses if n not in model.input_names]
    if not isinstance(data, dict):
        raise InputError(f"evaluating model '{model.name}' needs arrays by name {names}")
    sources = _as_sources(data, names, f"evaluating model '{model.name}'")
    embedded.check_input_shapes(model, sources)
    sources = _for_workers(sources)
    rows = int(next(iter(sources.values())).shape[0])
    if rows == 0:
        raise InputError(f"evaluation data for model '{model.name}' has no samples")
    chunk = chunk_size(chunk_rows, batch_size, sources)
    bundle = ModelBundle.from_model(model, job_name, job_overrides)
    bar = RowsProgress("evaluate", rows, enabled=progress is not False, stream=stream)
    parts: dict = {}
    with connect(scheduler, client, workers) as active:
        _run_chunks(active, evaluate_chunk, bundle, _chunk_inputs(sources, rows, chunk),
                    chunk, rows, (batch_size, seed, allow_nonfinite), retries, timeout,
                    lambda i, start, result: parts.__setitem__(i, result), bar)
    bar.finish()
    return embedded.reduce_evaluation(p for i in sorted(parts) for p in parts[i])
