"""What every command shares: one-line errors instead of tracebacks, option parsing,
loading a spec in three steps (compile without weights, check memory, allocate).

A command that reads SPEC [--weights W]::

    graph = open_spec(spec, params, weights)         # shapes only, nothing allocated
    check_memory(graph.model(name), batch, max_memory, weights)   # refuse up front
    fill_weights(graph, seed, weights)               # now allocate / load
"""
from __future__ import annotations

import functools
import os
import sys

import click

from .. import api, errors
from ..io.modelfile import weights_source
from ..errors import GraphspecError, InputError, SpecErrors
from ..spec.loader import parse_scalar


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command had saved when it stopped (for the one line)."""


# Trainer.fit saves a checkpoint on Ctrl-C and raises TrainingInterrupted (when the
# trainer has it); a plain KeyboardInterrupt is the same event anywhere else.
INTERRUPTIONS = (KeyboardInterrupt,) + tuple(
    t for t in (getattr(errors, "TrainingInterrupted", None),) if t is not None)


def fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


def friendly_errors(command):
    """Run ``command``; report errors as lines, never tracebacks."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage errors: click prints them and exits 2
        except INTERRUPTIONS as exc:
            fail(f"interrupted: {exc}" if str(exc) else "interrupted", 130)
        except SpecErrors as exc:
            fail(str(exc))
        except GraphspecError as exc:
            fail(f"error: {exc}", getattr(exc, "exit_code", 1))
        except MemoryError:
            fail("error: out of memory although the estimate fitted (try a smaller "
                 "--batch-size, or --max-memory to set the budget)")
        except Exception as exc:  # noqa: BLE001 - the promise is: no traceback, ever
            fail(f"internal error: {type(exc).__name__}: {exc} (this is a graphspec bug; "
                  "please report it with the spec that caused it)", 3)
    return wrapper


def parse_params(values) -> dict:
    params = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{item}' should look like NAME=VALUE", param_hint="--set")
        try:
            value = parse_scalar(raw)        # as the spec would read it: 1e-3 is a number
        except InputError:
            value = None
        if not isinstance(value, (int, float, str, bool)):
            raise click.BadParameter(f"'{item}': VALUE must be a number, string or boolean",
                                     param_hint="--set")
        params[name] = value
    return params


def input_files(values) -> dict:
    """``--input NAME=FILE`` options as {name: file}; a name given twice is refused
    (the last one silently winning hides a typo)."""
    files = {}
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{item}' should look like NAME=FILE.npy",
                                     param_hint="--input")
        if not path.strip():
            raise click.BadParameter(f"'{item}': empty path (an unset shell variable?); "
                                     "give the .npy file after '='", param_hint="--input")
        if name in files:
            raise click.BadParameter(f"input '{name}' given twice ({files[name]} and "
                                     f"{path}); give each input once", param_hint="--input")
        files[name] = path
    return files


def input_labels(files: dict) -> dict:
    """{"--input NAME": file} for :func:`guard_outputs`."""
    return {f"--input {name}": path for name, path in files.items()}


set_option = click.option("--set", "params", multiple=True, metavar="NAME=VALUE",
                          help="Override a spec param (repeatable), e.g. --set image_size=32.")
seed_option = click.option("--seed", type=int, default=None,
                           help="Seed for weight initialisation and sampling layers.")


class _Size(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from ..runtime import memory
        try:
            return memory.parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


max_memory_option = click.option(
    "--max-memory", type=_Size(), default=None, metavar="SIZE",
    help="Memory budget, e.g. 4G or 512M (default: what the system has available and the "
         "address-space limit allow). A model estimated to need more is refused up front.")


def make_checkpoint_dir(directory) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--checkpoint: cannot use '{directory}' as a checkpoint directory: "
                         f"{exc.strerror or exc}") from None


def open_spec(spec, params, weights=None):
    """The compiled spec with no weights allocated yet (see :func:`fill_weights`). SPEC
    may be a model file (graphspec pack); params recorded in it or in ``weights`` apply
    unless --set gives them, and one stderr line says so."""
    opened = api.prepare(spec, weights, parse_params(params))
    for note in opened.notes:
        click.echo(note, err=True)
    return opened.graph


def check_memory(model, batch_size: int = 0, max_memory=None, weights=None, training=False,
                 optimizer=None, reads: dict | None = None, extra: dict | None = None):
    """Refuse before allocating when ``model`` would not fit, with the ``--weights``
    file and the other ``reads`` ({option: .npz path}) it will load and any ``extra``
    bytes ({what: bytes}); returns the estimate."""
    from ..io.files import npz_bytes
    from ..runtime import memory      # here, not at import: `validate` needs neither
    est = memory.estimate(model, batch_size, training=training, optimizer=optimizer)
    files = {"--weights": weights, **(reads or {})}
    held = {f"{option} file": npz_bytes(path) for option, path in files.items() if path}
    memory.check(est, max_memory, {**held, **(extra or {})})
    return est


def fill_weights(graph, seed, weights, warn_if_random: bool = False):
    """Allocate the weights (after :func:`check_memory`): from ``--weights`` or fresh
    from ``seed``. Returns the seed used. Running on random weights by accident (a
    forgotten ``--weights``) gets one warning line with the seed that repeats it."""
    weights = weights_source(graph, weights)        # --weights, else the model file SPEC is
    if not weights and warn_if_random and seed is None:
        import secrets
        seed = secrets.randbelow(2 ** 31)
    graph.initialize(seed)
    if weights:
        graph.load_weights(weights)                # checks the architecture it records
    elif warn_if_random:
        click.echo(f"warning: no --weights given: using fresh random weights (seed {seed}; "
                   f"--seed {seed} repeats them); pass --weights W.npz from build or train",
                   err=True)
    return seed
