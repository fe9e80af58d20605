"""The ``graphspec`` command: a thin shell over the Python API.

Every command turns a :class:`~graphspec.errors.GraphspecError` into one line on
stderr and a non-zero exit code; no traceback reaches the user. Exit codes: 0 success,
1 invalid spec or input, 2 usage error (click's own), 3 an internal error (a bug:
please report it), 130 interrupted.

Commands are loaded lazily: ``graphspec --help`` and the completion of a command name
import click and nothing else (numpy, the compiler and every optional library are
imported only by the command that runs). The table below is the one list of commands.
"""
from __future__ import annotations

import importlib

import click

# name -> (module under graphspec.cli, attribute, one-line help shown by `graphspec --help`)
COMMANDS = {
    "validate": ("spec_commands", "validate",
                 "Check specs: schema, references, cycles and shapes."),
    "build": ("run_commands", "build",
              "Compile every model, print its summary, optionally save initial weights."),
    "predict": ("run_commands", "predict", "Run one model on input arrays."),
    "inspect-nodes": ("run_commands", "inspect_nodes",
                      "List every call (node) of every layer, with output statistics."),
    "train": ("train_commands", "train", "Train a model on data; save the trained weights."),
    "evaluate": ("train_commands", "evaluate", "Loss and metrics of a model on data."),
    "plot": ("plot_commands", "plot", "Draw the graph of a spec (SVG, PNG, PDF, DOT, Mermaid)."),
    "plot-history": ("plot_commands", "plot_history_command",
                     "Draw training curves from train --history files."),
    "diff": ("review_commands", "diff",
             "Compare two specs as compiled models: what changed, do old weights still load."),
    "export": ("export_commands", "export",
               "Export a model with its weights to ONNX or Keras (.keras)."),
    "import-keras": ("keras_commands", "import_keras",
                     "Turn a Keras 3 model (.keras or config.json) into a spec and weights."),
    "sweep": ("scale_commands", "sweep",
              "Train one run per point of a grid over spec params (locally or on Dask)."),
    "adapt": ("adapt_commands", "adapt",
              "Compute Normalization layers' mean and variance from data (Keras' adapt)."),
    "pack": ("data_commands", "pack",
             "Pack a spec, its params and weights into one model file to hand over."),
    "init": ("data_commands", "init", "Write a starting spec for a CSV/Parquet data file."),
    "schema": ("spec_commands", "schema", "Print or save the JSON Schema of specs."),
}


class _CommandTable(dict):
    """``group.commands`` as click and tests use it, importing a command on first access."""

    def __missing__(self, name):
        if name not in COMMANDS:
            raise KeyError(name)
        module, attribute, _ = COMMANDS[name]
        command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
        self[name] = command
        return command

    def __contains__(self, name):
        return name in COMMANDS or dict.__contains__(self, name)

    def __iter__(self):
        return iter(list(COMMANDS) + [n for n in dict.keys(self) if n not in COMMANDS])

    def keys(self):
        return list(self)

    def values(self):
        return [self[name] for name in self]

    def items(self):
        return [(name, self[name]) for name in self]

    def get(self, name, default=None):
        return self[name] if name in self else default

    def __len__(self):
        return len(COMMANDS) + sum(1 for name in dict.keys(self) if name not in COMMANDS)


class LazyGroup(click.Group):
    """A click group whose commands are imported when they are run, not when listed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands = _CommandTable(self.commands)

    def list_commands(self, ctx):
        return list(self.commands)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2] if name in COMMANDS else
                 dict.__getitem__(self.commands, name).get_short_help_str())
                for name in self.commands]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graphspec")
def main():
    """Build, validate, run and train neural-network graphs declared in YAML specs.

    \b
    Examples:
      graphspec validate specs/
      graphspec build specs/mlp.yaml --set input_dim=64
      graphspec COMMAND --help
    """


__all__ = ["main", "COMMANDS"]
