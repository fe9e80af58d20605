"""The ``graphspec`` command: a thin shell over the Python API.

Every command turns a :class:`~graphspec.errors.GraphspecError` into one line on
stderr and a non-zero exit code; no traceback reaches the user. Exit codes: 0 success,
1 invalid spec or input, 2 usage error (click's own), 3 an internal error (a bug:
please report it).
"""
import click

from .run_commands import build, inspect_nodes, predict
from .spec_commands import plot, schema, validate
from .train_commands import evaluate, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graphspec")
def main():
    """Build, validate, run and train neural-network graphs declared in YAML specs."""


for command in (validate, build, predict, inspect_nodes, train, evaluate, plot, schema):
    main.add_command(command)

__all__ = ["main"]
