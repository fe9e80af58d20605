"""The pieces of the fit loop that are not about the model: the epoch's running sums,
the validation split, Ctrl-C held back until a step has finished, the order of an
epoch's rows, and reading the rows of a batch (from arrays checked whole, or streamed
from memory-mapped ``.npy`` files and checked batch by batch)."""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np

from ..errors import InputError
from ..io.arrays import as_float, check_input, check_shape, check_target, real_array
from ..io.npystream import NpySource, take_rows


class DataError(InputError):
    """Training or evaluation data that does not fit the model; the CLI adds the file."""


class EpochSums:
    """Running, sample-weighted sums of one epoch's batch logs. Skipped batches (a
    non-finite loss under ``on_nan="skip"``) are counted, not averaged in."""

    def __init__(self, sums=None, seen: int = 0, skipped: int = 0):
        self.sums, self.seen, self.skipped = dict(sums or {}), int(seen), int(skipped)

    def add(self, logs: dict, rows: int) -> None:
        if logs.get("skipped"):
            self.skipped += 1
            return
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * rows
        self.seen += rows

    def logs(self, state: dict, count_skipped: bool) -> dict:
        out = {k: v / self.seen for k, v in self.sums.items()} if self.seen else \
            {"loss": float("nan")}
        out.update(state)
        if count_skipped:
            out["skipped"] = float(self.skipped)
        return out

    def as_dict(self) -> dict:
        return {"sums": self.sums, "seen": self.seen, "skipped": self.skipped}


class DeferredInterrupt:
    """With a checkpoint to write, a first Ctrl-C stops training at the next batch
    boundary, so a step (forward, backward, the in-place weight update) is never cut in
    half; a second Ctrl-C stops at once. Only in the main thread, and only where
    SIGINT still has Python's default handler (someone else's handler is left alone)."""

    def __init__(self):
        self.pending = False

    def take(self) -> bool:
        """Whether a Ctrl-C is pending; clears it."""
        pending, self.pending = self.pending, False
        return pending

    def raise_if_pending(self) -> None:
        if self.take():
            raise KeyboardInterrupt

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    @contextlib.contextmanager
    def deferred(self, enabled: bool):
        self.pending = False
        if not enabled or threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return
        signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.pending = False


def split_validation(size: int, validation_split: float):
    """Keras takes the validation samples from the end, before any shuffling."""
    train, _ = split_counts(size, validation_split)
    indices = np.arange(size)
    return indices[:train], indices[train:]


def split_counts(size: int, validation_split: float) -> tuple:
    """``(training rows, validation rows)``: rows ``[0, training)`` train, the rest
    (taken from the end, before any shuffling, as Keras does) validate."""
    if not 0 <= validation_split < 1:
        raise InputError(f"validation_split must be in [0, 1), got {validation_split}")
    n_val = int(size * validation_split) if validation_split else 0
    if n_val >= size:
        raise InputError(f"validation_split {validation_split} leaves no training samples "
                         f"out of {size}; use a smaller split or more data")
    return size - n_val, n_val


# -- the order of an epoch's rows ------------------------------------------------------------
SHUFFLE_BLOCK_VALUES = 1 << 24     # values (of every array, per row) in one shuffle block


def shuffle_block_rows(values_per_row: int, batch_size: int) -> int:
    """Rows of one shuffle block of streamed data: ``SHUFFLE_BLOCK_VALUES`` (16 Mi values,
    64 MiB as float32) over the values one row holds in every array read (inputs and
    targets), rounded up to a whole number of batches. It depends on shapes and batch
    size only, never on the stored dtypes or the machine."""
    rows = max(1, -(-SHUFFLE_BLOCK_VALUES // max(int(values_per_row), 1)))
    return int(batch_size) * -(-rows // int(batch_size))


class EpochOrder:
    """The rows of one epoch, batch by batch.

    Without ``shuffle``: in order. With it, and ``block_rows`` None or at least the rows
    there are: one permutation of all of them drawn from ``rng`` (the in-memory order;
    it is the same numbers as before streaming existed). With more rows than
    ``block_rows``: a block shuffle. The rows are cut into consecutive blocks of
    ``block_rows`` (the last may be shorter); the blocks' order is one permutation drawn
    from ``rng``; the rows inside block ``k`` are permuted by
    ``default_rng([seed, epoch, k])``. An epoch thus reads each block's rows once, at
    random inside the block but close together on disk, and its order depends only on
    ``(seed, epoch)``: a resumed run sees the same batches. Only the current block's
    permutation is held, not an index of every row.
    """

    def __init__(self, rng, rows: int, batch_size: int, shuffle: bool,
                 block_rows: int | None = None, key: tuple = ()):
        self.rows, self.batch_size, self.key = int(rows), int(batch_size), tuple(key)
        self.full = self.blocks = None
        if not shuffle:
            return
        if block_rows is None or self.rows <= block_rows:
            self.full = rng.permutation(np.arange(self.rows))
            return
        self.block_rows = int(block_rows)
        self.blocks = rng.permutation(-(-self.rows // self.block_rows))
        sizes = np.minimum(self.block_rows, self.rows - self.blocks * self.block_rows)
        self.ends = np.cumsum(sizes)
        self._current = (None, None)

    def steps(self) -> int:
        return -(-self.rows // self.batch_size)

    def batch(self, b: int) -> np.ndarray:
        start, stop = b * self.batch_size, min((b + 1) * self.batch_size, self.rows)
        if self.full is not None:
            return self.full[start:stop]
        if self.blocks is None:
            return np.arange(start, stop)
        parts, position = [], start
        while position < stop:
            slot = int(np.searchsorted(self.ends, position, side="right"))
            begin = int(self.ends[slot - 1]) if slot else 0
            end = min(int(self.ends[slot]), stop)
            rows = self._block_rows(int(self.blocks[slot]))
            parts.append(rows[position - begin:end - begin])
            position = end
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _block_rows(self, block: int) -> np.ndarray:
        if self._current[0] != block:
            first = block * self.block_rows
            count = min(self.block_rows, self.rows - first)
            rng = np.random.default_rng([*self.key, block])
            self._current = (block, first + rng.permutation(count))
        return self._current[1]


# -- reading a batch's rows -----------------------------------------------------------------
def is_streamed(value) -> bool:
    """Read a batch at a time (memory-mapped), not held and checked whole."""
    return isinstance(value, (NpySource, np.memmap))


def _path(value):
    return getattr(value, "path", None) or getattr(value, "filename", None)


def _values_per_row(arrays) -> int:
    total = 0
    for array in arrays:
        count = 1
        for dim in array.shape[1:]:
            count *= int(dim)
        total += count
    return total


class ArrayRows:
    """Training data in memory, checked and cast whole beforehand (``split_data``)."""

    streamed = False

    def __init__(self, inputs: dict, targets: dict, size: int):
        self.inputs, self.targets, self.size = inputs, targets, int(size)

    def take(self, index) -> tuple:
        return ({k: v[index] for k, v in self.inputs.items()},
                {k: v[index] for k, v in self.targets.items()})

    def span(self, start: int, stop: int) -> tuple:
        return self.take(slice(start, stop))

    def fingerprint(self) -> dict:
        return {**self.inputs, **self.targets}

    def values_per_row(self) -> int:
        return _values_per_row(list(self.inputs.values()) + list(self.targets.values()))


class CastRows:
    """A streamed array as checkpoints fingerprint it: the dtype training casts it to,
    and its rows cast block by block (the same bytes as the whole array cast at once)."""

    def __init__(self, source, dtype):
        self.source, self.shape, self.dtype = source, tuple(source.shape), np.dtype(dtype)
        self.digest = None      # set by checkpoint.data_fingerprint, which reads it once

    def blocks(self):
        rows = len(self.source)
        row_bytes = max(1, _values_per_row([self.source]) * self.source.dtype.itemsize)
        step = max(1, (16 << 20) // row_bytes)
        for start in range(0, rows, step):
            block = np.asarray(self.source[start:min(start + step, rows)])
            with np.errstate(over="ignore", invalid="ignore"):
                yield np.ascontiguousarray(block.astype(self.dtype, copy=False))


class StreamedRows:
    """Training data read a batch at a time from memory-mapped sources
    (:class:`~graphspec.io.npystream.NpySource`, ``np.memmap``; plain arrays may be
    mixed in). Names, dtypes, shapes and row counts are checked from the headers when
    opened; each batch is checked (:mod:`graphspec.io.arrays`) as it is read, with the
    same casts as in-memory data, so the values are the same; an error names the file
    and the row of the whole array."""

    streamed = True

    def __init__(self, model, inputs: dict, targets: dict, dtype):
        self.model, self.dtype = model, dtype
        self.inputs = {k: v if is_streamed(v) else np.asarray(v) for k, v in inputs.items()}
        self.targets = {k: v if is_streamed(v) else np.asarray(v) for k, v in targets.items()}
        self.tensors = {t.name: t for t in model.inputs}
        self.limits = model.index_limits() if hasattr(model, "index_limits") else {}
        self.size = self._check_headers()
        self._fingerprint = None

    def _fail(self, value, message):
        path = _path(value)
        return DataError(f"{path}: {message}" if path else message)

    def _check_headers(self) -> int:
        model = self.model
        for name, value in {**self.inputs, **self.targets}.items():
            what = f"input '{name}' of model '{model.name}'" if name in self.inputs \
                else f"target '{name}'"
            try:
                if not value.ndim:
                    raise InputError(f"{what} is a single value; training needs a batch axis")
                real_array(np.empty((0,), value.dtype), what)
                if name in self.inputs:
                    check_shape(self.tensors[name], tuple(value.shape), model.name)
            except InputError as exc:
                raise self._fail(value, str(exc)) from None
        arrays = {**self.inputs, **self.targets}
        rows = {name: int(value.shape[0]) for name, value in arrays.items()}
        if len(set(rows.values())) > 1:
            raise DataError(f"training data for model '{model.name}': arrays have different "
                            "numbers of rows: " + ", ".join(
                                f"{n} {r}" + (f" ('{_path(arrays[n])}')" if _path(arrays[n])
                                              else "") for n, r in rows.items()))
        size = next(iter(rows.values()))
        if size == 0:
            raise DataError(f"training data for model '{model.name}' has no samples")
        return size

    def _cast_dtype(self, name, value):
        if name in self.inputs:
            return self.tensors[name].dtype
        return self.dtype if value.dtype.kind == "f" else value.dtype

    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = {name: CastRows(value, self._cast_dtype(name, value))
                                 for name, value in {**self.inputs, **self.targets}.items()}
        return self._fingerprint

    def values_per_row(self) -> int:
        return _values_per_row(list(self.inputs.values()) + list(self.targets.values()))

    def take(self, index) -> tuple:
        """Rows ``index`` (an epoch's shuffled batch), checked."""
        index = np.asarray(index, dtype=np.intp)
        return self._checked({k: take_rows(v, index) for k, v in self.inputs.items()},
                             {k: take_rows(v, index) for k, v in self.targets.items()}, index)

    def span(self, start: int, stop: int) -> tuple:
        """Rows ``start:stop`` (validation, evaluation), checked."""
        return self._checked({k: np.asarray(v[start:stop]) for k, v in self.inputs.items()},
                             {k: np.asarray(v[start:stop]) for k, v in self.targets.items()},
                             int(start))

    def _check_at(self, name, array, offset):
        if name in self.inputs:
            return check_input(self.tensors[name], array, self.model.name,
                               self.limits.get(name), offset)
        if array.dtype.kind == "f":
            return as_float(array, self.dtype, f"target '{name}'", offset)
        return check_target(name, array, len(array), self.dtype)

    def _checked(self, inputs: dict, targets: dict, rows) -> tuple:
        """``rows``: the first row of a span, or the rows of a gathered batch."""
        out = []
        for group, sources in ((inputs, self.inputs), (targets, self.targets)):
            checked = {}
            for name, array in group.items():
                try:
                    checked[name] = self._check_at(name, array, rows if np.ndim(rows) == 0
                                                   else 0)
                except InputError as exc:
                    message = str(exc)
                    if np.ndim(rows):       # gathered rows: find the first bad one on disk
                        for pos in np.argsort(rows, kind="stable"):
                            try:
                                self._check_at(name, array[pos:pos + 1], int(rows[pos]))
                            except InputError as located:
                                message = str(located)
                                break
                    raise self._fail(sources[name], message) from None
            out.append(checked)
        return tuple(out)
