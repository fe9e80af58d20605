"""Untrusted array files in, atomically written files out.

Every ``.npz``/``.npy`` is read with ``allow_pickle=False``: an object array in a file
is refused, never unpickled. Every output is written to a temporary file in the target
directory, flushed and fsynced, then renamed over the target, so a crash or a kill
leaves either the old file or the new one, never half of either.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from ..errors import InputError

MAX_ARRAY_FILE_BYTES = 8 << 30


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Yield a file object; on success it replaces ``path`` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"cannot write '{path}': directory '{directory}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path)[-40:],
                               dir=directory)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_npz(path, arrays: dict) -> None:
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def save_json(path, obj) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _check_size(path):
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if size > MAX_ARRAY_FILE_BYTES:
        raise InputError(f"'{path}' is larger than {MAX_ARRAY_FILE_BYTES >> 30} GiB")


def load_npz(path) -> dict:
    """Arrays of an ``.npz`` keyed by name; pickled (object) arrays are refused."""
    path = os.fspath(path)
    _check_size(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(f"'{path}' is a single .npy array, expected an .npz archive")
            return {name: archive[name] for name in archive.files}
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"'{path}' contains pickled Python objects; graphspec only "
                             "reads plain numeric arrays") from None
        raise InputError(f"cannot read '{path}': {exc}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise InputError(f"cannot read '{path}' as an .npz archive: {exc}") from None


def load_npy(path) -> np.ndarray:
    path = os.fspath(path)
    _check_size(path)
    try:
        value = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"'{path}' contains pickled Python objects; graphspec only "
                             "reads plain numeric arrays") from None
        raise InputError(f"cannot read '{path}': {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read '{path}' as a .npy array: {exc}") from None
    if isinstance(value, np.lib.npyio.NpzFile):
        value.close()
        raise InputError(f"'{path}' is an .npz archive; pass a .npy array here")
    return value
