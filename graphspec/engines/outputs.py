"""Where an engine's output rows go: memory, one ``.npy``, a directory of ``NAME.npy``,
or an ``.npz`` archive — always whole files under their final names, or nothing.

Every engine hands a sink blocks of rows (``write(first_row, {name: rows})``) in any
order; a block written twice lands on the same rows. The sink opens its files when the
first block shows each output's trailing shape and dtype, and at ``commit`` checks that
every row was written exactly once before anything is renamed into place.
"""
from __future__ import annotations

import contextlib
import os
import zipfile

import numpy as np

from ..errors import InputError
from ..io.files import atomic_write, check_output_path
from ..io.npystream import NpyWriter


def output_paths(output, names: list) -> dict:
    """Output name -> final ``.npy`` path, {} for an ``.npz`` target or None (memory).

    ``output`` is a ``.npy`` file (single-output models), a ``.npz`` file, or a
    directory (existing, or written with a trailing slash and created) for NAME.npy.
    """
    if output is None:
        return {}
    output = os.fspath(output)
    if output.endswith(".npz"):
        check_output_path(output)
        return {}
    if output.endswith(".npy"):
        if len(names) != 1:
            raise InputError(f"the model has outputs {names}; '{output}' can hold one: pass "
                             "a directory (DIR/ gets NAME.npy per output) or an .npz file")
        return {names[0]: check_output_path(output)}
    if not (os.path.isdir(output) or output.endswith(os.sep)):
        raise InputError(f"cannot tell what to write at '{output}': name a .npy file, an "
                         ".npz file, or a directory (end it with '/' to create it)")
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory '{output}': {exc.strerror or exc}") from None
    return {name: check_output_path(os.path.join(output, f"{name}.npy")) for name in names}


class RowSink:
    """Collects ``rows`` rows of every output; see the module docstring."""

    def __init__(self, output, names: list, rows: int):
        self.output = None if output is None else os.fspath(output)
        self.names, self.rows = list(names), int(rows)
        self.paths = output_paths(output, self.names)
        self.npz = self.output is not None and not self.paths
        self._targets: dict = {}        # name -> NpyWriter or in-memory array
        self._written = np.zeros(0, dtype=np.int64)
        self._blocks: list = []         # (first_row, count) per block written

    def _target(self, name, block: np.ndarray):
        target = self._targets.get(name)
        if target is None:
            shape = (self.rows,) + block.shape[1:]
            if self.output is None:
                target = np.empty(shape, block.dtype)
            else:
                directory = os.path.dirname(os.path.abspath(self.output)) if self.npz \
                    else None
                path = self.paths.get(name) or os.path.join(directory, f"{name}.npy")
                target = NpyWriter(path, shape, block.dtype)
            self._targets[name] = target
        return target

    def write(self, first_row: int, outputs: dict) -> None:
        count = None
        for name in self.names:
            block = np.asarray(outputs[name])
            count = len(block) if count is None else count
            if len(block) != count:
                raise InputError(f"outputs of rows from {first_row} have different lengths")
            target = self._target(name, block)
            if isinstance(target, np.ndarray):
                target[first_row:first_row + count] = block
            else:
                target.write(first_row, block)
        self._blocks.append((first_row, count or 0))

    def check_complete(self) -> None:
        """Every row written, none twice — a last line of defence behind the engines."""
        counts = np.zeros(self.rows, dtype=np.int32)
        for first, count in self._blocks:
            counts[first:first + count] += 1
        missing, twice = np.flatnonzero(counts == 0), np.flatnonzero(counts > 1)
        if len(missing) or len(twice):
            raise InputError(f"internal error: {len(missing)} output row(s) missing and "
                             f"{len(twice)} written twice; nothing was saved")

    def commit(self) -> dict:
        """Check, then rename into place; returns output name -> array (memory) or path."""
        self.check_complete()
        if self.output is None:
            return {name: self._targets[name] for name in self.names}
        if self.npz:
            self._commit_npz()
            return {name: self.output for name in self.names}
        for name in self.names:
            self._targets[name].commit()
        return dict(self.paths)

    def _commit_npz(self):
        # An .npz member is an .npy file stored verbatim (numpy.savez uses ZIP_STORED),
        # so each finished temporary .npy is copied in, a block at a time.
        writers = [self._targets[name] for name in self.names]
        for writer in writers:
            writer.flush()
        try:
            with atomic_write(self.output) as handle, \
                    zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, writer in zip(self.names, writers):
                    zf.write(writer.tmp, arcname=f"{name}.npy")
        finally:
            self.abort()

    def abort(self) -> None:
        for target in self._targets.values():
            if not isinstance(target, np.ndarray):
                with contextlib.suppress(Exception):
                    target.abort()


def save_outputs(output, arrays: dict) -> dict:
    """Write in-memory outputs by name to ``output`` (a ``.npy``, ``.npz`` or ``DIR/``)
    through a :class:`RowSink`: whole files under their final names, or nothing."""
    names = list(arrays)
    rows = int(np.asarray(arrays[names[0]]).shape[0]) if names else 0
    sink = RowSink(output, names, rows)
    try:
        if rows:
            sink.write(0, arrays)
        return sink.commit()
    except BaseException:
        sink.abort()
        raise
