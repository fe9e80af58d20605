"""The Makefile's targets install what they need and no more (issue 9: `make demo` must not
pull the test extra's torch and keras)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dry_run(target, venv):
    return subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_demo_installs_only_the_demo_extra(tmp_path):
    commands = _dry_run("demo", tmp_path / "fresh-venv")
    installs = [line for line in commands.splitlines() if "pip install" in line]
    assert installs and all("'.[demo]'" in line for line in installs), installs
    assert "[test]" not in commands


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_test_target_installs_the_test_extra(tmp_path):
    commands = _dry_run("test", tmp_path / "fresh-venv")
    assert "'.[test]'" in commands
