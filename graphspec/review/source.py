"""Where a spec to compare comes from: a file, or ``REV:PATH`` read from git.

A revision is untrusted text (it may come from a pull request): git runs without a
shell, the revision may not start with '-' (it would be read as an option), and git
runs in the repository that contains PATH, with PATH made relative to its top.
"""
from __future__ import annotations

import os
import subprocess

from .. import api
from ..errors import InputError
from ..spec.loader import MAX_SPEC_BYTES, one_line

GIT_TIMEOUT_SECONDS = 60


def split_source(source: str):
    """``(rev, path)`` for ``REV:PATH``, ``(None, path)`` for a plain file."""
    source = os.fspath(source)
    if os.path.exists(source) or ":" not in source:
        return None, source
    rev, _, path = source.partition(":")
    if not rev or not path:
        raise InputError(f"'{one_line(source)}' is neither a file nor REV:PATH (e.g. "
                         "HEAD~1:specs/mlp.yaml)")
    if rev.startswith("-"):
        raise InputError(f"revision '{one_line(rev)}' starts with '-': refused (it would "
                         "be read as a git option); name a branch, tag or commit")
    return rev, path


def _existing_dir(path: str) -> str:
    """The nearest existing directory at or above ``path`` (the file may be gone)."""
    directory = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


def run_git(args: list, cwd) -> bytes:
    """``git -C cwd ARGS`` without a shell; its stdout, or InputError with git's first line."""
    try:
        done = subprocess.run(["git", "-C", str(cwd)] + list(args), capture_output=True,
                              timeout=GIT_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed (needed to read REV:PATH); install git "
                         "or pass spec files") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        message = lines[0] if lines else f"exit status {done.returncode}"
        raise InputError(f"git {args[0]} failed: {one_line(message)}")
    return done.stdout


def git_show(rev: str, path: str) -> str:
    """The text of ``path`` at revision ``rev`` of the repository containing ``path``."""
    if rev.startswith("-"):
        raise InputError(f"revision '{one_line(rev)}' starts with '-': refused")
    where = _existing_dir(path)
    top = run_git(["rev-parse", "--show-toplevel"], where).decode("utf-8", "replace").strip()
    absolute = os.path.abspath(path)   # resolve the directory, not a symlinked file
    real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    relative = os.path.relpath(real, os.path.realpath(top))
    if relative.startswith(os.pardir):
        raise InputError(f"'{one_line(path)}' is outside the git repository at {top}")
    try:
        raw = run_git(["show", f"{rev}:{relative.replace(os.sep, '/')}"], where)
    except InputError as exc:
        if "does not exist" not in str(exc) and "exists on disk, but not in" not in str(exc):
            raise
        raise InputError(f"{exc} (PATH in REV:PATH is read like a file path, relative to "
                         "the current directory)") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise InputError(f"{one_line(rev)}:{one_line(path)} is larger than "
                         f"{MAX_SPEC_BYTES >> 20} MiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{one_line(rev)}:{one_line(path)} is not UTF-8 text "
                         f"(byte {exc.start})") from None


def load_source(source: str, params: dict | None = None):
    """Compile (without allocating weights) the spec named by ``source``."""
    rev, path = split_source(source)
    if rev is None:   # a YAML spec, or a model file (its spec and recorded params)
        return api.prepare(path, None, params).graph
    return api.loads(git_show(rev, path), params=params, name=f"{rev}:{path}",
                     initialize=False)
