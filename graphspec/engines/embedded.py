"""The embedded engine: a compiled model run over rows in this process, batch by batch.

Inputs are in-memory arrays or ``.npy`` files read through memory-mapped windows
(:mod:`graphspec.io.npystream`); outputs go to a :class:`~.outputs.RowSink` batch by
batch. Peak memory is one block of input rows plus one batch through the model,
whatever the number of rows.

``predict_rows`` and ``evaluate_rows`` — run rows ``start:stop`` in batches — are the
per-chunk work of every engine: the Dask engine maps exactly these functions over its
chunks, so the same rows in the same batches give the same bits on either engine.
"""
from __future__ import annotations

import os

import numpy as np

from ..autodiff import Variable, recording
from ..errors import InputError
from ..graph.model import _fmt, shapes_compatible
from ..io.npystream import NpySource, open_npy
from ..layers.base import CallContext
from .outputs import RowSink
from .progress import RowsProgress

BLOCK_BYTES = 16 << 20      # input bytes mapped at once (rounded to whole batches)


# -- the per-batch functions (the only calls into the model and the trainer) -------------
def predict_batch(model, batch_arrays: dict, batch_size: int | None = None,
                  seed=None) -> dict:
    """Outputs by name for inputs by name: one batch, or a block of whole batches run
    ``batch_size`` rows at a time (the same batches, so the same bits). Inputs are
    checked here, per call: names, shapes, dtype, finiteness after the cast.

    The one place an engine runs a model: the lead switches it to
    ``runtime.executor.predict_batches`` when that lands. A block per call rather than
    a batch per call halves the cost of a small model (measured on the MLP: the input
    checks and call overhead of 32-row calls cost as much as the layers)."""
    return model.predict(batch_arrays, batch_size=batch_size, seed=seed)


def evaluate_batch(trainer, batch: dict, ctx) -> tuple:
    """(loss and metric values, rows) of one batch: the body of ``Trainer.evaluate``'s
    loop, so the reduced numbers are the trainer's own."""
    from ..train.trainer import _scalar
    inputs, targets, rows = trainer.split_data(batch)
    model = trainer.model
    with recording(False):
        values = model.run([Variable(inputs[n]) for n in model.input_names], ctx)
        _, logs = trainer._objective(values, targets, ctx.rng)
        logs = {k: _scalar(v) for k, v in logs.items()}
        logs.update(trainer._metrics(values, targets))
    return logs, rows


def reduce_evaluation(parts) -> dict:
    """Means over rows from per-batch ``(logs, rows)`` in row order — the same sums in
    the same order as ``Trainer.evaluate``, so the floats are identical (adding chunk
    subtotals instead would regroup the additions and change the last bits)."""
    sums, count = {}, 0
    for logs, rows in parts:
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + value * rows
        count += rows
    return {key: value / max(count, 1) for key, value in sums.items()}


# -- sources -----------------------------------------------------------------------------
def as_sources(data, names: list, what: str) -> dict:
    """``names`` -> NpySource or array, from a dict (or a bare array/path for one name).

    Paths are opened as ``.npy`` sources (header checked, nothing mapped yet); every
    source must have the same number of rows.
    """
    if not isinstance(data, dict):
        if len(names) != 1:
            raise InputError(f"{what} needs {names}: pass a dict keyed by name")
        data = {names[0]: data}
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"{what} needs {names}; missing {missing} (found {sorted(data)})")
    sources = {}
    for name in names:
        value = data[name]
        if isinstance(value, (str, os.PathLike)):
            value = open_npy(value)
        elif not isinstance(value, NpySource):
            value = np.asarray(value)
            if value.ndim == 0:
                raise InputError(f"'{name}' is a single value; {what} needs a batch axis")
        sources[name] = value
    lengths = {name: len(source) for name, source in sources.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{what}: arrays have different numbers of rows: " +
                         ", ".join(f"{n} {r}" for n, r in lengths.items()))
    return sources


def model_inputs(model, inputs) -> dict:
    """Inputs keyed by the model's input names (a bare value for a one-input model),
    refused in ``Model.check_inputs``' words when names are missing or unexpected."""
    if not isinstance(inputs, dict):
        if len(model.inputs) != 1:
            raise InputError(f"model '{model.name}' has inputs {model.input_names}: "
                             "pass a dict keyed by input name")
        return {model.input_names[0]: inputs}
    missing = [n for n in model.input_names if n not in inputs]
    extra = [n for n in inputs if n not in model.input_names]
    if missing or extra:
        raise InputError(f"model '{model.name}' expects inputs {model.input_names}; "
                         f"missing {missing}, unexpected {extra}")
    return inputs


def check_input_shapes(model, sources: dict) -> None:
    """Trailing shapes against the model's inputs, from headers, before any work."""
    for tensor in model.inputs:
        source = sources[tensor.name]
        if not shapes_compatible(tensor.shape, (None,) + tuple(source.shape[1:])):
            where = f" in '{source.path}'" if isinstance(source, NpySource) else ""
            raise InputError(f"input '{tensor.name}' of model '{model.name}' expects shape "
                             f"{_fmt(tensor.shape)} (batch first), got an array of shape "
                             f"{tuple(source.shape)}{where}")


def row_count(sources: dict) -> int:
    return len(next(iter(sources.values())))


def _read(source, start: int, stop: int):
    if isinstance(source, NpySource):
        # A plain ndarray view of the mapped window: slices and ufuncs on an np.memmap
        # go through its subclass hooks on every call (measured: ~20% of a small batch).
        return np.asarray(source.rows(start, stop))
    return source[start:stop]


def block_rows(sources: dict, batch_size: int) -> int:
    """Rows per mapped block: whole batches, about BLOCK_BYTES of input."""
    row_bytes = sum(int(np.prod(s.shape[1:], dtype=np.int64)) * s.dtype.itemsize
                    for s in sources.values())
    return batch_size * max(1, BLOCK_BYTES // max(row_bytes * batch_size, 1))


def blocks(sources: dict, start: int, stop: int, batch_size: int):
    """``(first_row, {name: rows})`` for rows start:stop, a block of whole batches at a
    time (about BLOCK_BYTES of input, mapped while it is used)."""
    step = block_rows(sources, batch_size)
    for block_start in range(start, stop, step):
        block_stop = min(block_start + step, stop)
        yield block_start, {name: _read(source, block_start, block_stop)
                            for name, source in sources.items()}


def batches(sources: dict, start: int, stop: int, batch_size: int):
    """``(first_row, {name: rows})`` for rows start:stop, batch_size at a time; batches
    start at ``start`` (engines make chunk starts multiples of batch_size)."""
    for block_start, block in blocks(sources, start, stop, batch_size):
        rows = len(next(iter(block.values())))
        for offset in range(0, rows, batch_size):
            yield block_start + offset, {name: array[offset:offset + batch_size]
                                         for name, array in block.items()}


# -- chunks: what one engine task runs ---------------------------------------------------
def predict_rows(model, sources: dict, start: int, stop: int, batch_size: int, seed=None,
                 first_row: int = 0):
    """``(row, outputs)`` per block of rows start:stop of ``sources``, whose row 0 is row
    ``first_row`` of the whole input (a chunk's sources start at the chunk).

    With a seed, the batch at row r draws any randomness from ``default_rng([seed, r])``,
    so a stochastic model gives the same rows on any engine and any chunking.
    """
    if seed is not None:       # one call per batch, each with its own generator
        for first, batch in batches(sources, start, stop, batch_size):
            row = first_row + first
            yield row, predict_batch(model, batch, batch_size, [seed, row])
        return
    for first, block in blocks(sources, start, stop, batch_size):
        yield first_row + first, predict_batch(model, block, batch_size)


def evaluate_rows(trainer, sources: dict, start: int, stop: int, batch_size: int,
                  seed=None, first_row: int = 0) -> list:
    """Per-batch ``(logs, rows)`` of rows start:stop, in row order.

    Without a seed any randomness comes from the graph's generator, as in
    ``Trainer.evaluate``; with one, the batch at row r (``first_row`` as in
    ``predict_rows``) uses ``default_rng([seed, r])``.
    """
    parts = []
    for first, batch in batches(sources, start, stop, batch_size):
        rng = trainer.graph.rng() if seed is None else \
            np.random.default_rng([seed, first_row + first])
        parts.append(evaluate_batch(trainer, batch, CallContext(training=False, rng=rng)))
    return parts


# -- the engine ---------------------------------------------------------------------------
def predict(model, inputs, output=None, batch_size: int = 32, seed=None,
            progress: bool | None = None, stream=None) -> dict:
    """Run ``model`` over every row of ``inputs``; outputs by name (arrays if ``output``
    is None, else the paths written: a ``.npy``, ``DIR/`` or ``.npz``)."""
    batch_size = _check_batch_size(batch_size)
    sources = as_sources(model_inputs(model, inputs), model.input_names,
                         f"model '{model.name}'")
    check_input_shapes(model, sources)
    rows = row_count(sources)
    if rows == 0:
        raise InputError(f"the inputs of model '{model.name}' have no rows")
    sink = RowSink(output, model.output_names, rows)
    bar = RowsProgress("predict", rows, enabled=progress is not False, stream=stream)
    try:
        for first, outputs in predict_rows(model, sources, 0, rows, batch_size, seed):
            sink.write(first, outputs)
            bar.advance(len(next(iter(outputs.values()))))
        result = sink.commit()
    except BaseException:
        sink.abort()
        raise
    bar.finish()
    return result


def evaluate(trainer, data, batch_size: int = 32, seed=None, progress: bool | None = None,
             stream=None) -> dict:
    """Loss and metrics over ``data`` (inputs and targets by name; arrays, ``.npy``
    paths or sources), streamed; equal to ``trainer.evaluate`` on the same rows."""
    batch_size = _check_batch_size(batch_size)
    sources = evaluation_sources(trainer, data)
    rows = row_count(sources)
    bar = RowsProgress("evaluate", rows, enabled=progress is not False, stream=stream)
    step, parts = block_rows(sources, batch_size), []
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        parts += evaluate_rows(trainer, sources, start, stop, batch_size, seed)
        bar.advance(stop - start)
    bar.finish()
    return reduce_evaluation(parts)


def evaluation_sources(trainer, data) -> dict:
    model = trainer.model
    names = model.input_names + [n for n in trainer.job.losses if n not in model.input_names]
    sources = as_sources(data, names, f"evaluating model '{model.name}'")
    check_input_shapes(model, sources)
    if row_count(sources) == 0:
        raise InputError(f"evaluation data for model '{model.name}' has no samples")
    return sources


def _check_batch_size(batch_size) -> int:
    if batch_size is None:
        return 32
    if int(batch_size) < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    return int(batch_size)
