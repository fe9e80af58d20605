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
import fcntl
import json
import os
import stat
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MAX_ARRAY_FILE_BYTES = 8 << 30
MAX_ARRAY_BYTES = 8 << 30          # uncompressed, summed over an archive's arrays
MAX_ARCHIVE_MEMBERS = 1 << 16

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"
_PICKLED = "contains pickled Python objects; graphspec only reads plain numeric arrays"


# -- the output guard ----------------------------------------------------------------
class UsageError(InputError):
    """A command line that cannot be right (an output that would destroy an input, an
    empty path): the CLI reports it as a usage error, exit 2, before any work."""
    exit_code = 2


@dataclass(frozen=True)
class Inside:
    """An output that is a file ``name`` inside a directory option, such as the
    checkpoint file in ``--checkpoint DIR``; the option's value is ``directory``."""
    directory: str
    name: str


@dataclass(frozen=True)
class OutputDir:
    """An output option naming a directory that receives one file per name in
    ``names`` (``predict -o DIR/``: NAME.npy per output); ``names`` None while they are
    not known yet (only the directory itself is checked)."""
    directory: str
    names: tuple | None = None


def is_directory_output(path) -> bool:
    """Whether an output path names a directory: it ends with a separator or is one."""
    if path is None:
        return False
    path = os.fspath(path)
    return path.endswith((os.sep, "/")) or os.path.isdir(path)


def inside(directory, name: str):
    """``Inside(directory, name)``, or None when the option was not given."""
    return None if directory is None else Inside(os.fspath(directory), name)


def _paths(value) -> list:
    """The paths one option names: None -> [], a list -> each, Inside -> its file."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _paths(item)]
    if isinstance(value, Inside):
        return [os.path.join(value.directory, value.name)]
    if isinstance(value, OutputDir):
        return [os.path.join(value.directory, name) for name in value.names or ()]
    return [os.fspath(value)]


def _raw(value) -> list:
    """The values as typed on the command line (for the empty-path check)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [r for item in value for r in _raw(item)]
    return [value.directory if isinstance(value, (Inside, OutputDir)) else os.fspath(value)]


class _Identity:
    """Where a path leads: its resolved name and, if it exists, its inode."""

    def __init__(self, path: str):
        self.path = path
        self.real = os.path.realpath(path)
        try:
            info = os.stat(path)
            self.inode = (info.st_dev, info.st_ino)
        except OSError:
            self.inode = None

    def same(self, other: "_Identity") -> bool:
        return self.real == other.real or (self.inode is not None and self.inode == other.inode)


def guard_outputs(outputs: dict, inputs: dict) -> None:
    """Refuse, before any work, a command line whose outputs would destroy its inputs.

    ``outputs`` and ``inputs`` map an option label (``"-o"``, ``"--weights"``,
    ``"SPEC"``, ``"--input x"``) to a path, a list of paths, an :class:`Inside` or None
    (option not given). Raises :class:`UsageError` (exit 2) naming both options and the
    path when an output is the same file as an input or as another output: same
    resolved name (symlinks) or same ``(st_dev, st_ino)`` (hard links). An empty path
    (``--weights ""``, usually an unset shell variable) is refused too, never ignored.
    An output and an input under the same label (``--checkpoint`` read by ``--resume``
    and rewritten) are one option doing what it says, not a clash.
    """
    for label, value in list(outputs.items()) + list(inputs.items()):
        if any(not str(raw).strip() for raw in _raw(value)):
            # An argument (SPEC) cannot be left out; an option usually can.
            rest = "give a file name" if not label.startswith("-") else \
                f"give a file name or leave {label} out"
            raise UsageError(f"{label}: empty path (an unset shell variable?); {rest}")
    seen = []   # (label, identity, is an input) of the inputs, then of earlier outputs
    for label, value in inputs.items():
        seen += [(label, _Identity(path), True) for path in _paths(value)]
    for label, value in outputs.items():
        for path in _paths(value):
            mine = _Identity(path)
            for other_label, other, is_input in seen:
                if other_label != label and mine.same(other):
                    harm = f"writing it would destroy {other_label}" if is_input else \
                        "one output would overwrite the other"
                    raise UsageError(f"{label} and {other_label} name the same file "
                                     f"'{path}': {harm}; choose another path for {label}")
            seen.append((label, mine, False))
    for label, value in outputs.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, OutputDir):
                check_output_dir(item.directory)
                if os.path.isdir(item.directory):
                    for path in _paths(item):
                        check_output_path(path)
            elif not isinstance(item, Inside):
                for path in _paths(item):
                    check_output_path(path)


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


def check_output_dir(path) -> str:
    """Refuse a directory output (files written inside it) that cannot be: an existing
    non-directory, or a missing directory that cannot be created. Returns the path."""
    path = os.fspath(path)
    if not path:
        raise InputError("an output path is empty")
    target = os.path.abspath(path)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InputError(f"cannot write into '{path}': it is a file, not a directory")
    existing = target
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise InputError(f"cannot create directory '{path}': '{existing}' is not a "
                         "directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into '{path}': directory '{existing}' is not "
                         "writable")
    return path


def _new_file_mode(path) -> int:
    """The permissions the output should end with: the old file's, or umask's default."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


TEMP_MARK = ".graphspec-tmp-"


def _temp_prefix(path) -> str:
    """``.NAME.graphspec-tmp-``: hidden, recognisable, and naming its target, so a
    later run can find the temp files a killed run left for the same output."""
    return "." + os.path.basename(path)[:120] + TEMP_MARK


def remove_stale_temps(path) -> list:
    """Remove graphspec's temp files for ``path`` that no live process is writing.

    A writer holds an flock on its temp file from creation to rename, so a temp file
    whose lock can be taken was left by a run that died (SIGKILL, power loss). Only
    files older than this call are considered, and only ours (by name). Returns the
    paths removed.
    """
    directory = os.path.dirname(os.path.abspath(path))
    prefix, started, removed = _temp_prefix(path), time.time(), []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        candidate = os.path.join(directory, name)
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_mtime > started:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # held by a live writer?
            os.unlink(candidate)
            removed.append(candidate)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Yield a file object; on success it replaces ``path`` atomically."""
    path = check_output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(path)      # what a killed earlier write of this file left behind
    import tempfile               # here, not at import: reading a spec writes nothing
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=directory)
        # The lock says "a live writer owns this temp file" (remove_stale_temps); a
        # second descriptor keeps it held until the rename, after the handle closes.
        fcntl.flock(fd, fcntl.LOCK_EX)
        lock_fd = os.dup(fd)
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
    finally:
        os.close(lock_fd)


def save_npz(path, arrays: dict) -> None:
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def json_safe(obj):
    """``obj`` with NaN and +-Infinity as null: JSON has no such numbers, and strict
    parsers (JavaScript's, jq's, Go's) reject Python's bare ``NaN``."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    return obj


def dumps_json(obj, **kwargs) -> str:
    """Valid JSON text for ``obj`` (non-finite numbers as null)."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def save_json(path, obj) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(dumps_json(obj, indent=2, sort_keys=True))
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


def read_npy_header(handle, what: str) -> tuple:
    """(shape, fortran order, dtype, header bytes) of one .npy stream, its data unread:
    the one reader of .npy headers (whole files here, memory-mapped windows in npystream)."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise InputError(f"{what}: unsupported .npy format version {version}")
    except InputError:
        raise
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:
        raise InputError(f"{what}: not a valid .npy array header ({exc})") from None
    return tuple(int(d) for d in shape), bool(fortran), dtype, handle.tell()


def _read_header(handle, what: str):
    """(shape, dtype, header bytes) of one .npy stream; object arrays refused."""
    shape, _, dtype, offset = read_npy_header(handle, what)
    if dtype.hasobject:
        raise InputError(f"{what} {_PICKLED}")
    return shape, dtype, offset


def _declared_bytes(shape, dtype) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * dtype.itemsize


def _check_npz(path) -> None:
    """Refuse pickles, lying headers and zip bombs before numpy reads any data."""
    import zipfile   # in the functions that read archives: a spec check reads none
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


def npz_bytes(path) -> int:
    """The uncompressed size an ``.npz`` declares (0 if it is not a readable zip):
    what loading it will allocate, known without inflating anything."""
    import zipfile
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        return 0


def load_npz(path) -> dict:
    """Arrays of an ``.npz`` keyed by name; pickled (object) arrays are refused."""
    import zipfile
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
