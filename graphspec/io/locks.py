"""Advisory locks on outputs: two runs never write one file at once.

``graphspec train`` holds an ``flock`` on ``OUTPUT.lock`` (beside ``-o``, and beside the
checkpoint file in ``--checkpoint DIR``) for the whole run; the holder's pid is written
into the lock file so that a second run can say who holds it. The kernel releases an
flock when its holder exits, however it exits (SIGKILL included), so a killed run
leaves no stale lock: the next run finds the file, takes the lock and carries on.

The holder removes the lock file when it finishes, while still holding the lock. A run
that opened the file just before that removal would then hold a lock on a file no one
else can see; so after taking the lock a run checks that the path still names the
file it locked, and starts over if not.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time

from ..errors import InputError

SUFFIX = ".lock"


class OutputLocked(InputError):
    """Another live run holds the lock on an output."""


def lock_path(path) -> str:
    """``OUTPUT.lock`` beside the file ``path`` resolves to, so a symlinked alias of
    an output takes the same lock."""
    return os.path.realpath(os.fspath(path)) + SUFFIX


def _holder(fd) -> str:
    """The pid written by the holder; it writes it right after locking, so wait briefly."""
    for _ in range(20):
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            text = ""
        if text.isdigit():
            return text
        time.sleep(0.01)
    return "unknown"


def _acquire(path, option: str) -> int:
    name = lock_path(path)
    while True:
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"cannot lock {option} '{path}': {name}: "
                             f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputLocked(f"{option} '{path}' is being written by another graphspec run "
                               f"(pid {holder}, lock {name}); wait for it to finish or choose "
                               f"another path for {option}") from None
        try:
            current = os.stat(name, follow_symlinks=False).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)          # the previous holder removed it meanwhile: take the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


@contextlib.contextmanager
def locked(path, option: str = "-o"):
    """Hold the lock on output ``path`` (named ``option`` in messages) for the block.

    Raises :class:`OutputLocked`, naming the holder's pid, when another live process
    holds it.
    """
    fd = _acquire(path, option)
    try:
        yield lock_path(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path(path))
        os.close(fd)
