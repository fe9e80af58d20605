"""Every shell and Python block of README.md runs as written, so the README cannot rot.

Blocks fenced ```sh, ```bash or ```python are run in file order in one temporary copy of
the repository (so a later block sees the files an earlier one wrote): shell blocks by
``bash -e -o pipefail`` with the venv's ``bin`` first on PATH, Python blocks by the venv's
python, both importing the copy's ``graphspec``. A block that cannot run here (``pip
install``, ``make test`` itself, ``git push``) is skipped by writing
``<!-- readme-test: skip -->`` on the line before its fence.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
SKIP_MARK = "<!-- readme-test: skip -->"
RUNNABLE = {"sh": "shell", "bash": "shell", "python": "python"}
BLOCK_TIMEOUT = 120        # seconds; the whole README should run in well under a minute
_RUNS_THE_SUITE = re.compile(r"\bmake\s+(?:[^\n#]*\s)?test\b|\bpytest\b")
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)")


def readme_blocks(text: str) -> list:
    """(line of the fence, kind, code, skipped) for each runnable fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, language, start = match.group(1), match.group(2).lower(), i
        end = start + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        if language in RUNNABLE:
            previous = next((lines[j].strip() for j in range(start - 1, -1, -1)
                             if lines[j].strip()), "")
            blocks.append((start + 1, RUNNABLE[language], "\n".join(lines[start + 1:end]) + "\n",
                           previous == SKIP_MARK))
        i = end + 1
    return blocks


def _read_readme() -> str:
    with open(README, encoding="utf-8") as handle:
        return handle.read()


BLOCKS = readme_blocks(_read_readme()) if os.path.exists(README) else []


def _project_files() -> list:
    """Tracked files plus new ones not ignored: the work tree as a user would clone it."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sorted({p for p in listed.decode().split("\0") if p})


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    return make_repo_copy(str(tmp_path_factory.mktemp("readme") / "graphspec"))


def make_repo_copy(target: str) -> str:
    """A copy of the repository with the project's venv linked in (not rebuilt)."""
    for relative in _project_files():
        source = os.path.join(ROOT, relative)
        if not os.path.isfile(source) or relative.startswith(".venv/"):
            continue
        os.makedirs(os.path.join(target, os.path.dirname(relative)), exist_ok=True)
        shutil.copy2(source, os.path.join(target, relative))   # mtimes kept: make sees no change
    _venv_view(os.path.dirname(os.path.dirname(sys.executable)), os.path.join(target, ".venv"))
    return str(target)


def _venv_view(venv: str, view: str) -> None:
    """The project's venv seen from the copy, read-only in effect: its packages and
    scripts linked, pip replaced by a refusal, and every install stamp the Makefile
    names present and newer than pyproject.toml, so `make demo` runs without
    reinstalling (an editable install from the copy would repoint the shared venv)."""
    os.makedirs(os.path.join(view, "bin"))
    for entry in os.listdir(venv):
        if entry not in ("bin",) and not entry.startswith(".installed"):
            source = os.path.join(venv, entry)
            if entry == "pyvenv.cfg":
                shutil.copy2(source, os.path.join(view, entry))
            else:
                os.symlink(source, os.path.join(view, entry))
    for entry in os.listdir(os.path.join(venv, "bin")):
        link = os.path.join(view, "bin", entry)
        if entry.startswith("pip"):
            with open(link, "w") as handle:
                handle.write("#!/bin/sh\necho 'pip is disabled in the README test: mark "
                             "the block <!-- readme-test: skip -->' >&2\nexit 1\n")
            os.chmod(link, 0o755)
        else:
            os.symlink(os.path.join(venv, "bin", entry), link)
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as handle:
        stamps = set(re.findall(r"\.installed-[A-Za-z0-9_-]+", handle.read()))
    stamps.update(e for e in os.listdir(venv) if e.startswith(".installed"))
    for stamp in stamps:
        with open(os.path.join(view, stamp), "w"):
            pass


def _environment(repo_copy: str) -> dict:
    env = dict(os.environ)
    bin_dir = os.path.join(repo_copy, ".venv", "bin")
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["GRAPHSPEC_README_TEST"] = "1"     # a README that runs the tests must not recurse
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONPATH"] = repo_copy          # the copy's graphspec, also for the console script
    return env


def test_readme_has_runnable_blocks():
    assert any(kind == "shell" for _, kind, _, _ in BLOCKS), "README.md has no ```sh block"


@pytest.mark.skipif(os.environ.get("GRAPHSPEC_README_TEST") == "1",
                    reason="already running inside a README block")
@pytest.mark.parametrize("line, kind, code, skipped", BLOCKS,
                         ids=[f"README.md:{line}-{kind}" for line, kind, _, _ in BLOCKS])
def test_readme_block_runs(repo_copy, line, kind, code, skipped):
    if skipped:
        pytest.skip(f"README.md:{line} is marked {SKIP_MARK}")
    if _RUNS_THE_SUITE.search(code):
        pytest.fail(f"README.md:{line} runs the test suite, which runs this test: mark the "
                    f"block {SKIP_MARK} (or move the command to a block of its own)")
    if kind == "shell":
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        command = [os.path.join(repo_copy, ".venv", "bin", "python"), "-c", code]
    # Its own process group: a timeout ends the block and everything it started.
    process = subprocess.Popen(command, cwd=repo_copy, env=_environment(repo_copy), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"README.md:{line}: the {kind} block ran longer than {BLOCK_TIMEOUT} s")
    if process.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        pytest.fail(f"README.md:{line}: the {kind} block exited {process.returncode}:\n"
                    f"{code}\n--- last output ---\n{tail}")


def test_block_extraction_and_the_skip_mark():
    text = "\n".join([
        "# t", "```sh", "echo one", "```", "", SKIP_MARK, "", "```bash", "pip install x", "```",
        "```python", "print(1)", "```", "```yaml", "a: 1", "```", "````sh", "```", "````"])
    assert readme_blocks(text) == [(2, "shell", "echo one\n", False),
                                   (8, "shell", "pip install x\n", True),
                                   (11, "python", "print(1)\n", False),
                                   (17, "shell", "```\n", False)]


def test_a_block_that_runs_the_suite_is_caught():
    assert _RUNS_THE_SUITE.search("make demo\nmake test   # the whole suite\n")
    assert _RUNS_THE_SUITE.search("python -m pytest tests")
    assert not _RUNS_THE_SUITE.search("make demo   # train, evaluate, test accuracy\n")
