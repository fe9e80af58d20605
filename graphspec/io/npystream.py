"""``.npy`` files streamed a block of rows at a time: read through memory-mapped windows,
written through positioned writes to a temporary file that is renamed at the end.

Why windows and not ``np.load(path, mmap_mode="r")``: mapping a whole file reserves
address space equal to its size, so an input larger than the process's address-space
limit (``ulimit -v``, a container's limit, ``RLIMIT_AS``) could not be opened at all,
and every page touched stays resident until the whole map is dropped. A window maps
only the rows of one block (``np.memmap`` with the block's offset) and is unmapped when
the block is done: address space and resident memory stay at one block, whatever the
file's size. The same rules as :mod:`graphspec.io.files` hold: the header is parsed and
checked against the file's size before anything is mapped, pickles (object dtypes) are
refused, and data is read with numpy's own parsers only (never unpickled).

There is no size cap here (``files.MAX_ARRAY_FILE_BYTES`` guards whole-file loads):
nothing is ever allocated for the whole file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile

import numpy as np

from ..errors import InputError
from .files import (_kind, _new_file_mode, _temp_prefix, check_output_path, read_npy_header,
                    remove_stale_temps)

_NOT_NUMERIC = ("holds {dtype} values; graphspec streams plain numeric arrays (bool, "
                "integer or floating point)")


WINDOW_BYTES = 16 << 20     # bytes mapped at once when rows are read a slice at a time


class NpySource:
    """One ``.npy`` file's rows, read a window at a time; pickles as its path and header.

    Slicing rows (``source[a:b]``) serves them from the current window, mapping the
    next one (``WINDOW_BYTES``, or the slice if larger) when they fall outside it; at most
    one window is mapped. ``shape``, ``dtype`` and ``ndim`` make it an array-like for the
    executor's ``predict_batches`` and for ``dask.array.from_array`` (each chunk then
    reads its own rows on a worker).
    """

    def __init__(self, path: str, shape: tuple, dtype: np.dtype, offset: int):
        self.path, self.shape, self.dtype, self.offset = path, shape, dtype, offset
        self.ndim = len(shape)
        self.row_bytes = _count(shape[1:]) * dtype.itemsize
        self._window = None     # (first row, stop row, array)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_window"}

    def __setstate__(self, state):
        self.__dict__.update(state, _window=None)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self):
        return f"<NpySource '{self.path}' {self.shape} {self.dtype}>"

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a read-only array mapped from the file."""
        start, stop = max(0, start), min(stop, self.shape[0])
        count = max(stop - start, 0)
        if count == 0 or self.row_bytes == 0:
            return np.empty((count,) + self.shape[1:], self.dtype)
        try:
            return np.memmap(self.path, dtype=self.dtype, mode="r",
                             offset=self.offset + start * self.row_bytes,
                             shape=(count,) + self.shape[1:])
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read rows {start}-{stop} of '{self.path}': "
                             f"{getattr(exc, 'strerror', None) or exc} (was the file changed "
                             "or truncated while graphspec read it?)") from None

    def __getitem__(self, index):
        # dask.array.from_array asks for one slice per axis; only rows are windowed.
        index = index if isinstance(index, tuple) else (index,)
        first = index[0] if index else slice(None)
        if not isinstance(first, slice) or first.step not in (None, 1):
            raise TypeError("NpySource reads contiguous row ranges only")
        start, stop, _ = first.indices(self.shape[0])
        block = self._rows_windowed(start, max(start, stop))
        rest = index[1:]
        return block[(slice(None),) + rest] if rest else block

    def take(self, index) -> np.ndarray:
        """Rows ``index`` (any order, repeats allowed) as a new array, read in ascending
        row order through windows of at most ``WINDOW_BYTES`` (or one row): address
        space stays at one window however far apart the rows are (training's shuffled
        batches)."""
        index = np.asarray(index, dtype=np.intp).reshape(-1)
        out = np.empty((len(index),) + self.shape[1:], self.dtype)
        if not len(index):
            return out
        if index.min() < 0 or index.max() >= self.shape[0]:
            raise IndexError(f"rows {index.min()}..{index.max()} outside the "
                             f"{self.shape[0]} rows of '{self.path}'")
        order = np.argsort(index, kind="stable")
        rows = index[order]
        span = max(1, WINDOW_BYTES // max(self.row_bytes, 1))
        first = 0
        while first < len(rows):
            low = int(rows[first])
            stop = int(np.searchsorted(rows, low + span, side="left"))
            window = self._rows_windowed(low, int(rows[stop - 1]) + 1)
            out[order[first:stop]] = window[rows[first:stop] - low]
            first = stop
        return out

    def _rows_windowed(self, start: int, stop: int) -> np.ndarray:
        window = self._window
        if window is None or not window[0] <= start <= stop <= window[1]:
            span = max(stop - start, WINDOW_BYTES // max(self.row_bytes, 1))
            end = min(self.shape[0], start + span)
            # A plain ndarray view of the map: ufuncs and slices on an np.memmap go
            # through its subclass hooks on every call (measured: ~20% of a small batch).
            window = self._window = (start, end, np.asarray(self.rows(start, end)))
        return window[2][start - window[0]:stop - window[0]]


def take_rows(source, index) -> np.ndarray:
    """Rows ``index`` of an :class:`NpySource` (windowed, see ``NpySource.take``) or of
    any array (``np.memmap`` included) as an in-memory array."""
    if isinstance(source, NpySource):
        return source.take(index)
    return np.asarray(source[np.asarray(index, dtype=np.intp)])


def _count(dims) -> int:
    total = 1
    for dim in dims:
        total *= int(dim)
    return total


def _parse_header(handle, path):
    return read_npy_header(handle, f"'{path}'")


def open_npy(path) -> NpySource:
    """Check ``path``'s header (kind, dtype, declared size vs file size); map nothing."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "a directory" if os.path.isdir(path) else \
            "not a regular file" if os.path.exists(path) else "missing"
        raise InputError(f"cannot read '{path}': " + ("no such file" if what == "missing"
                                                      else f"it is {what}"))
    if _kind(path) != "npy":
        raise InputError(f"'{path}' is an .npz archive; streaming reads one .npy file per "
                         "array (save each with numpy.save, or pass a directory of them)")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            shape, fortran, dtype, offset = _parse_header(handle, path)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if dtype.hasobject:
        raise InputError(f"'{path}' contains pickled Python objects; graphspec only reads "
                         "plain numeric arrays")
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or \
            np.issubdtype(dtype, np.complexfloating) or dtype.fields is not None:
        raise InputError(f"'{path}' " + _NOT_NUMERIC.format(dtype=dtype))
    if not shape:
        raise InputError(f"'{path}' holds a single value; inputs need a batch axis first")
    if _count(shape) * dtype.itemsize + offset > size:
        raise InputError(f"'{path}' declares shape {shape} of {dtype}, more data than the "
                         "file holds (truncated or forged)")
    if fortran and len(shape) > 1:
        raise InputError(f"'{path}' is stored in Fortran (column-major) order, so its rows "
                         "are not contiguous; re-save it with "
                         "numpy.save(path, numpy.ascontiguousarray(x))")
    return NpySource(path, shape, dtype, offset)


def open_npy_dir(directory) -> dict:
    """``NAME.npy`` files of ``directory`` keyed by NAME (``--data DIR/``), headers checked."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise InputError(f"'{directory}' is not a directory of NAME.npy files")
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.endswith(".npy") and not n.startswith("."))
    except OSError as exc:
        raise InputError(f"cannot list '{directory}': {exc.strerror or exc}") from None
    if not names:
        raise InputError(f"'{directory}' holds no NAME.npy files; save one array per model "
                         "input and output name, e.g. numpy.save('DIR/pixels.npy', x)")
    return {name[:-4]: open_npy(os.path.join(directory, name)) for name in names}


class NpyWriter:
    """Rows written into a new ``.npy`` under a temporary name; ``commit`` renames it.

    Rows go through ``os.pwrite`` at their own offset, so a block written twice (a
    retried chunk) lands on the same bytes, and nothing but one block is ever in memory
    or mapped. Until ``commit`` the target path is untouched: a kill leaves at most a
    ``.tmp-*`` file, never half an output under the final name.
    """

    def __init__(self, path, shape: tuple, dtype):
        self.path = check_output_path(path)
        self.shape, self.dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        self.row_bytes = _count(self.shape[1:]) * self.dtype.itemsize
        directory = os.path.dirname(os.path.abspath(self.path))
        # Temp files are named and locked as io.files.atomic_write's: a killed run's
        # leftovers for this target are removed, a live writer's never are.
        remove_stale_temps(self.path)
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=_temp_prefix(self.path), dir=directory)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock = os.dup(fd)         # held until the rename, after the file closes
        except OSError as exc:
            raise InputError(f"cannot write '{self.path}': {exc.strerror or exc}") from None
        self._file = os.fdopen(fd, "w+b")
        try:
            header = {"descr": np.lib.format.dtype_to_descr(self.dtype),
                      "fortran_order": False, "shape": self.shape}
            try:
                np.lib.format.write_array_header_1_0(self._file, header)
            except ValueError:   # a header over 64 KiB needs format 2.0
                self._file.seek(0)
                np.lib.format.write_array_header_2_0(self._file, header)
            self.offset = self._file.tell()
            self._file.flush()
            self._file.truncate(self.offset + self.shape[0] * self.row_bytes)
        except BaseException as exc:
            self.abort()
            raise _write_error(self.path, exc)

    def write(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or start + len(rows) > self.shape[0]:
            raise InputError(f"rows {start}-{start + len(rows)} of shape {rows.shape} do not "
                             f"fit output '{self.path}' of shape {self.shape}")
        view = memoryview(rows.reshape(-1).view(np.uint8))
        position = self.offset + start * self.row_bytes
        try:
            while len(view):
                done = os.pwrite(self._file.fileno(), view, position)
                view, position = view[done:], position + done
        except OSError as exc:
            raise _write_error(self.path, exc)

    def flush(self) -> None:
        """Everything written so far is in the temporary file (``self.tmp``)."""
        self._file.flush()

    def commit(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self.tmp, _new_file_mode(self.path))
            os.replace(self.tmp, self.path)
        except BaseException as exc:
            self.abort()
            raise _write_error(self.path, exc)
        self._unlock()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        self._unlock()

    def _unlock(self) -> None:
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            with contextlib.suppress(OSError):
                os.close(lock)


def _write_error(path, exc):
    if isinstance(exc, OSError):
        # ENOSPC, EDQUOT, EIO...: one line, and any old file is still there.
        return InputError(f"cannot write '{path}': {exc.strerror or exc} (nothing was "
                          "changed)")
    return exc
