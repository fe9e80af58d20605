"""Help that teaches (issue 16): every registered command's --help ends with real
examples and every option says what it does. Commands registered later must pass too."""
import re

import click
import pytest
from click.testing import CliRunner
from specs_util import REPO

from graphspec.cli import main

NAMES = sorted(name for name in main.commands)


@pytest.mark.parametrize("name", NAMES)
def test_help_has_examples_that_use_the_command_and_real_specs(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output, f"add '\\b Examples:' to the docstring of {name}"
    examples = result.output.split("Examples:", 1)[1].split("Options:", 1)[0]
    commands = [line.strip() for line in examples.splitlines()
                if line.strip().startswith("graphspec ")]
    assert 2 <= len(commands) <= 4, examples
    assert all(line.startswith(f"graphspec {name}") or " | " in line or "&&" in line
               for line in commands[:1]), commands
    for spec in re.findall(r"\bspecs/[\w./-]+\.ya?ml\b", examples):
        assert (REPO / spec).is_file(), f"{name} --help names {spec}, which does not exist"


@pytest.mark.parametrize("name", NAMES)
def test_every_option_has_a_help_text(name):
    command = main.commands[name]
    missing = [p.opts[0] for p in command.params
               if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert missing == [], f"{name}: options without help: {missing}"
