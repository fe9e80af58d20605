"""Edited copies of shipped specs for the diff tests."""
from pathlib import Path

from specs_util import SPECS


def edited(tmp_path, spec: str, *replacements, name: str | None = None) -> Path:
    """``specs/<spec>`` with each ``(old, new)`` text replacement applied (each must hit)."""
    text = (SPECS / spec).read_text()
    for old, new in replacements:
        assert old in text, f"{old!r} is not in specs/{spec}"
        text = text.replace(old, new)
    path = Path(tmp_path) / (name or spec)
    path.write_text(text)
    return path


def shipped(spec: str) -> str:
    return str(SPECS / spec)


def git(repo, *args) -> str:
    import subprocess
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=review test",
                           "-c", "user.email=review@example.invalid", "-c", "commit.gpgsign=false",
                           *args], capture_output=True, text=True, check=True)
    return done.stdout


def scratch_repo(tmp_path, *commits) -> Path:
    """A git repository in ``tmp_path/repo`` with one commit per ``{path: text}``
    (a text of None deletes the file), on branch main."""
    repo = Path(tmp_path) / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i, files in enumerate(commits):
        for rel, text in files.items():
            path = repo / rel
            if text is None:
                git(repo, "rm", "-q", rel)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(repo, "add", rel)
        git(repo, "commit", "-q", "-m", f"commit {i}")
    return repo
