"""Validation at scale (1,000 specs) and the pre-commit hook definition."""
import cProfile
import io
import json
import pstats
import re
import shlex
import time

import yaml
from click.testing import CliRunner
from specs_util import MLP, REPO

from graphspec.cli import main


def test_validating_a_thousand_specs_is_fast(tmp_path):
    for i in range(1000):
        (tmp_path / f"spec_{i:04d}.yaml").write_text(
            MLP.replace("units: 8", f"units: {i % 64 + 1}").lstrip())
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "--format", "json"])
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.output[-2000:]
    report = json.loads(result.output)
    assert len(report) == 1000 and all(r["valid"] for r in report)
    print(f"\nvalidate: 1000 specs in {seconds:.2f} s")
    if seconds > 10:   # slow: show where the time goes (on 100 of them)
        profiler = cProfile.Profile()
        paths = sorted(map(str, tmp_path.glob("*.yaml")))[:100]
        profiler.runcall(CliRunner().invoke, main, ["validate", *paths, "--format", "json"])
        hot = io.StringIO()
        pstats.Stats(profiler, stream=hot).sort_stats("tottime").print_stats(15)
        print(hot.getvalue())
    assert seconds < 20


def test_pre_commit_hook_runs_the_real_validate_command():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "graphspec-validate"]
    assert hook["language"] == "python"
    assert hook["types"] == ["yaml"]
    assert re.search(hook["files"], "specs/mlp.yaml") and re.search(hook["files"], "a/b.yml")
    assert not re.search(hook["files"], "README.md")
    program, *args = shlex.split(hook["entry"])
    # The console script pre-commit installs is the one pyproject declares.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf'^{program} = "graphspec.cli:main"$', pyproject, re.MULTILINE)
    assert args == ["validate"] and "validate" in main.commands
    # pre-commit appends the staged file names to the entry.
    good, bad = REPO / "specs" / "mlp.yaml", REPO / "pyproject.toml"
    assert CliRunner().invoke(main, [*args, str(good)]).exit_code == 0
    assert CliRunner().invoke(main, [*args, str(bad), str(good)]).exit_code == 1
