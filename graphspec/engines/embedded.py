"""The embedded engine: a compiled model run over rows in this process, batch by batch.

Inputs are in-memory arrays or ``.npy`` files read through memory-mapped windows
(:mod:`graphspec.io.npystream`); outputs go to a :class:`~.outputs.RowSink` batch by
batch. Peak memory is one window of input rows plus one batch through the model,
whatever the number of rows.

``predict_batches`` and ``evaluate_rows`` — run every row of some sources in batches —
are the per-chunk work of every engine: the Dask engine maps exactly these functions over
its chunks, so the same rows in the same batches give the same bits on either engine.
Both run the model through the one executor (:mod:`graphspec.runtime.executor`), which
checks each batch as it is read (dtype, shape, index range, finiteness after the cast)
and refuses NaN/Inf outputs naming the node that made them.
"""
from __future__ import annotations

import os

import numpy as np

from ..autodiff import recording
from ..errors import InputError
from ..io.arrays import check_shape
from ..io.npystream import NpySource, open_npy
from ..runtime import executor
from .outputs import RowSink
from .progress import RowsProgress


# -- the only calls into the model and the trainer -----------------------------------------
def predict_batches(model, arrays: dict, batch_size: int, seed=None, first_row: int = 0,
                    allow_nonfinite: bool = False):
    """``(row, outputs)`` per batch of every row of ``arrays`` (array-likes by input
    name), row 0 of ``arrays`` being row ``first_row`` of the whole input.

    The one place an engine runs a model: ``runtime.executor.predict_batches``. Without
    a seed the batches share one context and the graph's generator, exactly as
    ``Model.predict``; with one, the batch at row r draws from ``default_rng([seed, r])``,
    so a model that samples at inference gives the same rows on any engine and chunking.
    """
    if seed is None:
        row = first_row
        for outputs in executor.predict_batches(model, arrays, batch_size,
                                                allow_nonfinite=allow_nonfinite):
            yield row, outputs
            row += len(next(iter(outputs.values())))
        return
    for rows in executor.batch_rows(_row_count(arrays), batch_size):
        row = first_row + rows.start
        batch = {name: array[rows] for name, array in arrays.items()}
        try:
            (outputs,) = executor.predict_batches(
                model, batch, None, rng=np.random.default_rng([seed, row]),
                allow_nonfinite=allow_nonfinite)
        except InputError as exc:
            raise InputError(f"rows {row}-{row + rows.stop - rows.start}: {exc}") from None
        yield row, outputs


def evaluate_batch(trainer, batch: dict, ctx, first_row: int = 0,
                   allow_nonfinite: bool = False) -> tuple:
    """(loss and metric values, rows) of one batch, row ``first_row`` of the data: the
    body of ``Trainer.evaluate``'s loop, so the reduced numbers are the trainer's own.
    (The trainer does not expose its loop body; when it does — ``Trainer.evaluate_batch``
    — this calls it instead.)"""
    from ..train.trainer import DataError, _scalar
    model = trainer.model
    last = first_row + int(next(iter(batch.values())).shape[0]) - 1
    try:
        inputs, targets, rows = trainer.split_data(batch)
    except DataError as exc:
        # split_data counts rows from the batch's start: say which batch it is.
        raise DataError(f"batch of rows {first_row}..{last}: {exc}") from None
    values = executor.run(model, inputs, ctx)
    if not allow_nonfinite:
        executor.check_finite_outputs(model, values, f" (rows {first_row}..{last})")
    with recording(False):
        _, logs = trainer._objective(values, targets, ctx.rng, ctx.activity)
    ctx.activity.clear()
    logs = {key: _scalar(value) for key, value in logs.items()}
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
def model_inputs(model, inputs) -> dict:
    """Inputs keyed by the model's input names (a bare value for a one-input model),
    refused in the executor's words when names are missing or unexpected."""
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


def as_sources(data: dict, names: list, what: str) -> dict:
    """``names`` -> NpySource or array; paths are opened as ``.npy`` sources (header
    checked, nothing mapped yet). Every source must have the same number of rows."""
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


def check_input_shapes(model, sources: dict) -> None:
    """Trailing shapes against the model's inputs, from headers, before any work."""
    for tensor in model.inputs:
        source = sources[tensor.name]
        try:
            check_shape(tensor, tuple(source.shape), model.name)
        except InputError as exc:
            where = f" in '{source.path}'" if isinstance(source, NpySource) else ""
            raise InputError(f"{exc}{where}") from None


def _row_count(sources: dict) -> int:
    return int(next(iter(sources.values())).shape[0])


# -- what one engine task runs -------------------------------------------------------------
def evaluate_rows(trainer, sources: dict, batch_size: int, seed=None, first_row: int = 0,
                  allow_nonfinite: bool = False):
    """Per-batch ``(logs, rows)`` of every row of ``sources``, in row order.

    Without a seed the batches share one context and the graph's generator, as in
    ``Trainer.evaluate``; with one, the batch at row r (``first_row`` as in
    ``predict_batches``) uses ``default_rng([seed, r])``.
    """
    shared = executor.context(trainer.model, collect_activity=True) if seed is None else None
    for rows in executor.batch_rows(_row_count(sources), batch_size):
        row = first_row + rows.start
        ctx = shared if shared is not None else executor.context(
            trainer.model, collect_activity=True, rng=np.random.default_rng([seed, row]))
        batch = {name: source[rows] for name, source in sources.items()}
        yield evaluate_batch(trainer, batch, ctx, row, allow_nonfinite)


# -- the engine ---------------------------------------------------------------------------
def predict(model, inputs, output=None, batch_size: int = 32, seed=None,
            progress: bool | None = None, stream=None, allow_nonfinite: bool = False) -> dict:
    """Run ``model`` over every row of ``inputs``; outputs by name (arrays if ``output``
    is None, else the paths written: a ``.npy``, ``DIR/`` or ``.npz``)."""
    batch_size = check_batch_size(batch_size)
    sources = as_sources(model_inputs(model, inputs), model.input_names,
                         f"model '{model.name}'")
    check_input_shapes(model, sources)
    rows = _row_count(sources)
    if rows == 0:
        raise InputError(f"the inputs of model '{model.name}' have no rows")
    executor.check_stateful_batches(model, rows, batch_size)
    sink = RowSink(output, model.output_names, rows)
    bar = RowsProgress("predict", rows, enabled=progress is not False, stream=stream)
    try:
        for first, outputs in predict_batches(model, sources, batch_size, seed,
                                              allow_nonfinite=allow_nonfinite):
            sink.write(first, outputs)
            bar.advance(len(next(iter(outputs.values()))))
        result = sink.commit()
    except BaseException:
        sink.abort()
        raise
    bar.finish()
    return result


def evaluate(trainer, data, batch_size: int = 32, seed=None, progress: bool | None = None,
             stream=None, allow_nonfinite: bool = False) -> dict:
    """Loss and metrics over ``data`` (inputs and targets by name; arrays, ``.npy``
    paths or sources), streamed; equal to ``trainer.evaluate`` on the same rows."""
    batch_size = check_batch_size(batch_size)
    sources = evaluation_sources(trainer, data)
    bar = RowsProgress("evaluate", _row_count(sources), enabled=progress is not False,
                       stream=stream)
    parts = []
    for logs, rows in evaluate_rows(trainer, sources, batch_size, seed,
                                    allow_nonfinite=allow_nonfinite):
        parts.append((logs, rows))
        bar.advance(rows)
    bar.finish()
    return reduce_evaluation(parts)


def evaluation_sources(trainer, data) -> dict:
    """Inputs and targets a job needs, by name, as sources; names, shapes and row counts
    checked from headers (extra arrays in a data directory are ignored)."""
    model = trainer.model
    names = model.input_names + [n for n in trainer.job.losses if n not in model.input_names]
    if not isinstance(data, dict):
        raise InputError(f"evaluating model '{model.name}' needs arrays by name {names}")
    sources = as_sources(data, names, f"evaluating model '{model.name}'")
    check_input_shapes(model, sources)
    if _row_count(sources) == 0:
        raise InputError(f"evaluation data for model '{model.name}' has no samples")
    return sources


def check_batch_size(batch_size) -> int:
    if batch_size is None:
        return 32
    if int(batch_size) < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    return int(batch_size)
