"""Untrusted array files in, atomically written files out.

Every ``.npz``/``.npy`` is read with ``allow_pickle=False``: an object array in a file
is refused, never unpickled. Before numpy allocates anything, the file's own headers
are checked: its kind (by its first bytes, not its name), the shape and dtype each
array declares against the bytes actually there, and an archive's total uncompressed
size and member count (a zip bomb is refused before it is inflated).

Every output is written to a temporary file in the target directory, flushed and
fsynced, then renamed over the target, so a crash or a kill leaves either the old file
or the new one, never half of either. Only regular files are ever replaced: an output
path naming a directory, a device (``/dev/null``, ``/dev/full``) or a FIFO is refused.
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import zipfile

import numpy as np

from ..errors import InputError

MAX_ARRAY_FILE_BYTES = 8 << 30
MAX_ARRAY_BYTES = 8 << 30          # uncompressed, summed over an archive's arrays
MAX_ARCHIVE_MEMBERS = 1 << 16

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_PICKLED = "contains pickled Python objects; graphspec only reads plain numeric arrays"


# -- writing ---------------------------------------------------------------------------
def check_output_path(path) -> str:
    """Refuse an output path that cannot be written as a regular file, before any work.

    Returns the path. The CLI can call this on ``-o``/``--history`` before a long
    training run, so a typo in the directory fails in the first second, not the last.
    """
    path = os.fspath(path)
    if not path:
        raise InputError("an output path is empty")
    directory = os.path.dirname(os.path.abspath(path))
    if path.endswith(os.sep) or os.path.isdir(path):
        raise InputError(f"cannot write '{path}': it is a directory; name a file in it")
    if not os.path.isdir(directory):
        raise InputError(f"cannot write '{path}': directory '{directory}' does not exist")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"cannot write '{path}': it is not a regular file (a device, "
                         "FIFO or socket); graphspec only replaces regular files")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"cannot write '{path}': directory '{directory}' is not writable")
    return path


def _new_file_mode(path) -> int:
    """The permissions the output should end with: the old file's, or umask's default."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Yield a file object; on success it replaces ``path`` atomically."""
    path = check_output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path)[-40:],
                                   dir=directory)
    except OSError as exc:
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            # ENOSPC, EDQUOT, EIO...: one line, and the old file is still there.
            raise InputError(f"cannot write '{path}': {exc.strerror or exc} (nothing was "
                             "changed)") from None
        raise


def save_npz(path, arrays: dict) -> None:
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def save_json(path, obj) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


# -- reading ---------------------------------------------------------------------------
def _check_size(path) -> int:
    try:
        if not os.path.isfile(path):
            what = "a directory" if os.path.isdir(path) else \
                "not a regular file" if os.path.exists(path) else "missing"
            raise InputError(f"cannot read '{path}': it is {what}" if what != "missing"
                             else f"cannot read '{path}': no such file")
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if size > MAX_ARRAY_FILE_BYTES:
        raise InputError(f"'{path}' is larger than {MAX_ARRAY_FILE_BYTES >> 30} GiB")
    return size


def _kind(path) -> str:
    """"npz" or "npy" from the first bytes of the file (names can lie)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(6)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if head[:4] in _ZIP_MAGIC:
        return "npz"
    if head == _NPY_MAGIC:
        return "npy"
    raise InputError(f"'{path}' is neither an .npz archive nor a .npy array (it starts "
                     f"with {head!r}); save arrays with numpy.savez or numpy.save")


def _read_header(handle, what: str):
    """(shape, dtype, header bytes) of one .npy stream, without reading its data."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise InputError(f"{what}: unsupported .npy format version {version}")
    except InputError:
        raise
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:
        raise InputError(f"{what}: not a valid .npy array header ({exc})") from None
    if dtype.hasobject:
        raise InputError(f"{what} {_PICKLED}")
    return tuple(shape), dtype, handle.tell()


def _declared_bytes(shape, dtype) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * dtype.itemsize


def _check_npz(path) -> None:
    """Refuse pickles, lying headers and zip bombs before numpy reads any data."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise InputError(f"'{path}' holds {len(members)} arrays, more than the "
                                 f"limit of {MAX_ARCHIVE_MEMBERS}")
            total = sum(m.file_size for m in members)
            if total > MAX_ARRAY_BYTES:
                raise InputError(f"'{path}' expands to {total} bytes, more than the "
                                 f"{MAX_ARRAY_BYTES >> 30} GiB limit (a zip bomb?)")
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise InputError(f"'{path}' holds '{member.filename}', which is not an "
                                     ".npy array; is it really an .npz archive?")
                what = f"'{path}' array '{member.filename[:-4]}'"
                with archive.open(member) as handle:
                    shape, dtype, offset = _read_header(handle, what)
                if _declared_bytes(shape, dtype) + offset > member.file_size:
                    raise InputError(f"{what} declares shape {shape} of {dtype}, more data "
                                     "than the archive holds (truncated or forged)")
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError,
            EOFError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read '{path}' as an .npz archive: {exc}") from None


def _check_npy(path, size: int) -> None:
    try:
        with open(path, "rb") as handle:
            shape, dtype, offset = _read_header(handle, f"'{path}'")
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if _declared_bytes(shape, dtype) + offset > size:
        raise InputError(f"'{path}' declares shape {shape} of {dtype}, more data than the "
                         "file holds (truncated or forged)")


def load_npz(path) -> dict:
    """Arrays of an ``.npz`` keyed by name; pickled (object) arrays are refused."""
    path = os.fspath(path)
    _check_size(path)
    if _kind(path) != "npz":
        raise InputError(f"'{path}' is a single .npy array, expected an .npz archive "
                         "(numpy.savez) with arrays keyed by name")
    _check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"'{path}' {_PICKLED}") from None
        raise InputError(f"cannot read '{path}': {exc}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise InputError(f"cannot read '{path}' as an .npz archive: {exc}") from None


def load_npy(path) -> np.ndarray:
    path = os.fspath(path)
    size = _check_size(path)
    if _kind(path) != "npy":
        raise InputError(f"'{path}' is an .npz archive; pass a .npy array here")
    _check_npy(path, size)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"'{path}' {_PICKLED}") from None
        raise InputError(f"cannot read '{path}': {exc}") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read '{path}' as a .npy array: {exc}") from None
