"""Commands for everyday files: ``pack`` (one model file to hand over) and ``init`` (a
starting spec written from a CSV/Parquet file)."""
from __future__ import annotations

import math
import re

import click

from ..errors import InputError
from ..io import files
from ..api import open_graph
from ..io.modelfile import save_model
from ..io.table_readers import profile_columns
from ..io.tabular import load_table
from .common import friendly_errors, parse_params, set_option


# The options the lead adds to train, evaluate and predict (tabular --data).
columns_option = click.option(
    "--columns", "columns", multiple=True, metavar="NAME=COLUMNS",
    help="Map CSV/Parquet columns to a model input or target (repeatable): a column, a "
         "span first:last or a comma list, e.g. --columns pixels=p0:p63. Overrides the "
         "job's data: section.")
categories_option = click.option(
    "--categories", "categories", multiple=True, metavar="NAME",
    help="NAME's column holds category names (class ids in a vocabulary the model file "
         "keeps), e.g. --columns species=species --categories species.")


def _guard(output, inputs: dict) -> None:
    """-o must not be one of the command's inputs (same path, symlink or hard link)."""
    files.guard_outputs({"-o": output}, inputs)


# -- pack ------------------------------------------------------------------------------
@click.command()
@click.argument("spec", type=click.Path())
@click.option("--weights", required=True, type=click.Path(),
              help="Trained weights (.npz) from graphspec train, or another model file.")
@click.option("--model", "model_name",
              help="The model the file is for (default: the one the weights record).")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="The model file to write, e.g. model.gspec.zip.")
@set_option
@friendly_errors
def pack(spec, weights, model_name, output, params):
    """Pack SPEC, its params and trained weights into one model file.

    The model file holds the spec text, the params it was compiled with, the weights
    and their metadata (category names too). Every command that takes SPEC and
    --weights takes it in their place; graphspec.load_model(path) reads it in Python.
    Params recorded in the weights apply without --set.

    \b
    Examples:
      graphspec pack specs/mlp.yaml --weights out/mlp_digits.npz -o out/mlp.gspec.zip
      graphspec predict out/mlp.gspec.zip --input pixels=out/digits_first5.npy
      graphspec pack iris.yaml --weights iris.npz --model model -o iris.gspec.zip
    """
    _guard(output, {"SPEC": spec, "--weights": weights})
    opened = open_graph(spec, weights, parse_params(params), seed=0)
    for line in opened.notes:
        click.echo(line, err=True)
    graph, recorded = opened.graph, opened.metadata or {}
    model = graph.model(model_name or recorded.get("model")).name \
        if (model_name or recorded.get("model") or len(graph.models) == 1) else None
    meta = save_model(graph, output, model_name=model, params=getattr(graph, "params", None))
    shown = ", ".join(f"{k}={v}" for k, v in sorted(meta["params"].items()))
    click.echo(f"packed {meta['spec']}" + (f" (model '{model}')" if model else "") +
               (f", params {shown}" if shown else "") +
               f" and {len(meta['weights'])} weight arrays into {output}")
    inputs = "--data FILE.csv" if meta.get("columns") else "--input NAME=FILE.npy"
    click.echo(f"next: graphspec predict {output} {inputs}", err=True)


# -- init ------------------------------------------------------------------------------
_NAME = re.compile(r"[^A-Za-z0-9_]")
MAX_CLASSES_FROM_NUMBERS = 20   # an integer target with at most this many values is a class id
MAX_CLASSES_FROM_TEXT = 1000    # more distinct texts than this (or half the rows): not classes


def tensor_name(column: str, taken=()) -> str:
    """A spec name (``[A-Za-z_][A-Za-z0-9_]*``) for a column, unique among ``taken``."""
    name = _NAME.sub("_", column.strip()) or "target"
    name = name if not name[0].isdigit() else f"c_{name}"
    base, i = name[:100], 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _columns_yaml(columns: list, header: list) -> str:
    """A span when the columns are contiguous in the header, else a list."""
    first, last = header.index(columns[0]), header.index(columns[-1])
    if len(columns) > 2 and header[first:last + 1] == columns and ":" not in "".join(columns):
        return _yaml_string(f"{columns[0]}:{columns[-1]}")
    return "[" + ", ".join(_yaml_string(c) for c in columns) + "]"


def _task(profile: dict, task: str) -> str:
    if task != "auto":
        return task
    if not profile["numeric"]:
        return "classification"
    small = profile["integer"] and profile["min"] >= 0 and \
        profile["max"] < MAX_CLASSES_FROM_NUMBERS and profile["distinct"] <= \
        MAX_CLASSES_FROM_NUMBERS
    return "classification" if small else "regression"


def _left_out(by_name: dict, skipped: list, gaps: list) -> list:
    """One line per reason columns are not features: text, or numbers with empty cells
    (training refuses empty cells, so the spec would not train as written with them)."""
    lines = []
    if gaps:
        shown = ", ".join(f"{c} ({by_name[c]['missing']} empty, first in data row "
                          f"{by_name[c]['first_missing']})" for c in gaps)
        lines.append(f"left out numeric column(s) with missing values: {shown}; fill the "
                     "empty cells, then add them to the features")
    if skipped:
        lines.append(f"left out text column(s) (not numbers): {', '.join(skipped)}")
    return lines


def starting_spec(data_path, target: str, task: str = "auto", hidden=(64, 32),
                  notes: list | None = None) -> tuple:
    """(YAML text, summary line) of a spec that trains on ``data_path`` as written: an MLP
    over the numeric columns (batch-normalised first) with a head sized from ``target``.
    Columns left out are said in the YAML and, one line per reason, appended to ``notes``:
    text columns, and numeric columns with empty cells (training refuses empty cells)."""
    profiles = profile_columns(data_path)
    header = [p["name"] for p in profiles]
    by_name = {p["name"]: p for p in profiles}
    if target not in by_name:
        raise InputError(f"{data_path}: no column '{target}' to predict; its columns: "
                         f"{', '.join(header[:12])}")
    features = [c for c in header if c != target and by_name[c]["numeric"]]
    gaps = [c for c in header if c != target and by_name[c].get("missing")]
    skipped = [c for c in header if c != target and not by_name[c]["numeric"]
               and c not in gaps]
    goal = by_name[target]
    if goal.get("missing"):
        raise InputError(f"{data_path}: column '{target}' (to predict) has "
                         f"{goal['missing']} empty cell(s), the first in data row "
                         f"{goal['first_missing']}; fill them or drop those rows, then run "
                         "init again")
    left_out = _left_out(by_name, skipped, gaps)
    if notes is not None:
        notes.extend(left_out)
    if not features:
        raise InputError(f"{data_path}: no numeric column besides '{target}' to learn from" +
                         (f" ({'; '.join(left_out)})" if left_out else ""))
    task = _task(by_name[target], task)
    output = tensor_name(target, {"features", "normalized", "hidden_1", "hidden_2"})
    if task == "classification":
        if by_name[target]["numeric"]:
            mapping = f"{{column: {_yaml_string(target)}}}"
            classes = int(by_name[target]["max"]) + 1
            if not by_name[target]["integer"] or by_name[target]["min"] < 0:
                raise InputError(f"{data_path}: column '{target}' holds numbers that are not "
                                 "class ids 0, 1, 2, ...; use --task regression")
        else:
            mapping = f"{{column: {_yaml_string(target)}, categories: auto}}"
            _, vocab = load_table(data_path, {output: {"column": target, "categories": "auto"}})
            classes = len(vocab[output])
            rows = by_name[target]["rows"]
            if classes > MAX_CLASSES_FROM_TEXT or (rows >= 20 and classes > rows // 2):
                raise InputError(f"{data_path}: column '{target}' has {classes} different "
                                 "texts, too many to be categories (an identifier or free "
                                 "text?); predict another column")
        head = f"{{type: Dense, units: {classes}, activation: softmax}}"
        loss, metrics = "sparse_categorical_crossentropy", "[accuracy]"
        what = f"{classes} classes"
    else:
        mapping = f"{{column: {_yaml_string(target)}}}"
        head = "{type: Dense, units: 1}"
        loss, metrics, what = "mse", "[mae]", "a number"
    rows = by_name[target]["rows"]
    batch = 16 if rows < 320 else 32 if rows < 100_000 else 256   # ~10+ steps an epoch
    epochs = max(5, min(200, math.ceil(3000 * batch / max(rows, 1))))
    lines = [
        f"# Written by: graphspec init --data {data_path} --target {target}",
        "# A starting point: change the layers, then graphspec train this spec --data FILE.",
        *([f"# Text columns left out (not numbers): {', '.join(skipped)}"] if skipped else []),
        *([f"# Numeric columns left out (empty cells; fill them, then add the columns to "
           f"features): {', '.join(gaps)}"] if gaps else []),
        "graphspec: 1",
        f"description: MLP from {len(features)} numeric column(s) to '{target}' ({what})",
        "layers:",
        "  normalize: {type: BatchNormalization}   # columns on very different scales",
        *(f"  hidden_{i + 1}: {{type: Dense, units: {units}, activation: relu}}"
          for i, units in enumerate(hidden)),
        f"  head: {head}",
        "models:",
        "  model:",
        "    inputs:",
        f"      features: {{shape: [{len(features)}]}}",
        "    calls:",
        "      - {layer: normalize, in: features, out: normalized}",
        *(f"      - {{layer: hidden_{i + 1}, in: {'normalized' if i == 0 else f'hidden_{i}'}, "
          f"out: hidden_{i + 1}}}" for i in range(len(hidden))),
        f"      - {{layer: head, in: hidden_{len(hidden)}, out: {output}}}",
        f"    outputs: [{output}]",
        "training:",
        "  default:",
        "    model: model",
        f"    loss: {loss}",
        "    optimizer: {type: adam, learning_rate: 0.003}",
        f"    metrics: {metrics}",
        f"    epochs: {epochs}",
        f"    batch_size: {batch}",
        "    data:                      # where each input and target is in the data file",
        f"      features: {{columns: {_columns_yaml(features, header)}}}",
        f"      {output}: {mapping}",
    ]
    summary = (f"an MLP from {len(features)} numeric column(s) to '{target}' ({task}, "
               f"{what}), {epochs} epochs")
    return "\n".join(lines) + "\n", summary


def check_starting_spec(text: str, name: str) -> None:
    """The written spec must validate; a failure here is a graphspec bug, said as such."""
    from .. import api
    from ..errors import SpecErrors
    try:
        api.loads(text, name=name, initialize=False)
    except SpecErrors as exc:
        raise InputError(f"the spec init wrote does not validate (a graphspec bug, please "
                         f"report it): {str(exc).splitlines()[0]}") from None


@click.command()
@click.option("--data", "data_path", required=True, type=click.Path(),
              help="A CSV or Parquet file with a header line (the training data).")
@click.option("--target", required=True, help="The column to predict.")
@click.option("--task", type=click.Choice(["auto", "classification", "regression"]),
              default="auto", show_default=True,
              help="auto: text or small non-negative integer targets are classes, other "
                   "numbers are regression.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="The spec to write (YAML).")
@friendly_errors
def init(data_path, target, task, output):
    """Write a starting spec for a CSV/Parquet file: an MLP over its numeric columns.

    The head is sized from --target: softmax over its categories with sparse categorical
    crossentropy, or one linear unit with mse for a number. The training job's data:
    section maps the columns, so the spec trains as written.

    \b
    Examples:
      graphspec init --data iris.csv --target species -o iris.yaml
      graphspec init --data houses.parquet --target price --task regression -o houses.yaml
      graphspec train iris.yaml --data iris.csv -o iris.npz
    """
    _guard(output, {"--data": data_path})
    notes = []
    text, summary = starting_spec(data_path, target, task, notes=notes)
    check_starting_spec(text, output)
    with files.atomic_write(output, "w") as handle:
        handle.write(text)
    click.echo(f"wrote {output}: {summary}")
    for note in notes:
        click.echo(note, err=True)
    click.echo(f"next: graphspec train {output} --data {data_path} -o weights.npz", err=True)


# -- for the commands that take --data (train, evaluate, predict) ----------------------
def data_mapping(graph, job_name=None, model_name=None, columns=(), categories=()) -> dict:
    """The column mapping for a tabular --data: --columns/--categories when given, else
    the data: section of the training job the command runs (chosen as build_job does:
    --job, else the first job for --model, else the first job), read through the column
    names the loaded weights record (:func:`graphspec.io.tabular.with_recorded`)."""
    from ..io.tabular import parse_columns
    if columns or categories:
        try:
            return parse_columns(columns, categories)
        except InputError as exc:          # a malformed option is a usage error (exit 2)
            option, _, message = str(exc).partition(" ")
            raise click.BadParameter(message, param_hint=option) from None
    from ..io.tabular import with_recorded
    jobs = graph.training or {}
    if job_name is None:
        job_name = next((n for n, j in jobs.items() if model_name in (None, j.get("model"))),
                        None)
    mapping = dict((jobs.get(job_name) or {}).get("data") or {})
    # Weights record the column NAMES training read: a data file is read by name, in any
    # column order (an explicit --columns span above still means this file's header).
    source = getattr(graph, "model_file", None) or "the weights"
    mapping, notes = with_recorded(mapping, getattr(graph, "metadata", None), f"'{source}'")
    for note in notes:
        click.echo(note, err=True)
    return mapping
