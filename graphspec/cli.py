"""The ``graphspec`` command: a thin shell over the Python API.

Every command turns a :class:`GraphspecError` into one line on stderr and a non-zero
exit code; no traceback reaches the user. Exit codes: 0 success, 1 invalid spec or
input, 2 usage error (click's own), 3 an internal error (a bug: please report it).
"""
from __future__ import annotations

import functools
import json
import os
import sys

import click
import numpy as np
import yaml

from . import api
from .errors import GraphspecError, InputError, SpecErrors
from .graph.summary import summary, to_dot, to_mermaid
from .io.files import atomic_write, load_npy, save_npz
from .spec.schema import spec_schema


def _fail(message: str, code: int = 1):
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
        except SpecErrors as exc:
            _fail(str(exc))
        except GraphspecError as exc:
            _fail(f"error: {exc}")
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except MemoryError:
            _fail("error: out of memory (try a smaller --batch-size)")
        except Exception as exc:  # noqa: BLE001 - the promise is: no traceback, ever
            _fail(f"internal error: {type(exc).__name__}: {exc} (this is a graphspec bug; "
                  "please report it with the spec that caused it)", 3)
    return wrapper


def _parse_params(values) -> dict:
    params = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{item}' should look like NAME=VALUE", param_hint="--set")
        value = yaml.safe_load(raw)
        if not isinstance(value, (int, float, str, bool)):
            raise click.BadParameter(f"'{item}': VALUE must be a number, string or boolean",
                                     param_hint="--set")
        params[name] = value
    return params


def _parse_inputs(values) -> dict:
    arrays = {}
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"'{item}' should look like NAME=FILE.npy",
                                     param_hint="--input")
        arrays[name] = load_npy(path)
    return arrays


set_option = click.option("--set", "params", multiple=True, metavar="NAME=VALUE",
                          help="Override a spec param (repeatable), e.g. --set image_size=32.")
seed_option = click.option("--seed", type=int, default=None,
                           help="Seed for weight initialisation and sampling layers.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graphspec")
def main():
    """Build, validate, run and train neural-network graphs declared in YAML specs."""


# -- validate ---------------------------------------------------------------------------
def _spec_files(paths) -> list:
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names)
                          if n.endswith((".yaml", ".yml"))]
        else:
            files.append(path)
    return files


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              help="github prints ::error annotations for GitHub Actions.")
@set_option
@friendly_errors
def validate(paths, fmt, params):
    """Check specs (files or directories): schema, references, cycles and shapes.

    Exit 0 if every spec is valid, 1 if any is not, 2 on usage errors.
    """
    overrides = _parse_params(params)
    files = _spec_files(paths)
    if not files:
        _fail("error: no .yaml/.yml spec files found in " + ", ".join(paths), 2)
    report, invalid = [], 0
    for file in files:
        errors = api.validate(file, overrides)
        invalid += bool(errors)
        report.append((file, errors))
    if fmt == "json":
        click.echo(json.dumps([{"file": f, "valid": not errs, "errors": [e.as_dict() for e in errs]}
                               for f, errs in report], indent=2))
    else:
        for file, errors in report:
            for e in errors:
                if fmt == "github":
                    message = f"{e.path}: {e.message}" if e.path else e.message
                    click.echo(f"::error file={e.file},line={e.line},col={e.col}::{message}")
                else:
                    click.echo(e.format())
            if fmt == "text" and not errors:
                click.echo(f"{file}: ok")
        if fmt == "text":
            click.echo(f"{len(files) - invalid} of {len(files)} spec(s) valid", err=True)
    sys.exit(1 if invalid else 0)


# -- build ------------------------------------------------------------------------------
@main.command()
@click.argument("spec", type=click.Path())
@seed_option
@click.option("-o", "--output", type=click.Path(), help="Save initial weights (.npz).")
@set_option
@friendly_errors
def build(spec, seed, output, params):
    """Compile every model, print its summary, optionally save initial weights."""
    graph = api.load(spec, seed=seed, params=_parse_params(params))
    for model in graph.models.values():
        click.echo(summary(model))
        click.echo()
    if output:
        graph.save_weights(output)
        click.echo(f"saved {len(graph.weights())} weight arrays to {output}")
    else:
        click.echo("next: graphspec predict SPEC --input NAME=FILE.npy, or -o W.npz to save "
                   "these weights", err=True)


# -- predict ----------------------------------------------------------------------------
def _loaded(spec, seed, weights, params):
    graph = api.load(spec, seed=seed, params=_parse_params(params))
    if weights:
        graph.load_weights(weights)
    return graph


@main.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to run (optional if the spec has one).")
@click.option("--weights", type=click.Path(), help="Weights (.npz) from build or train.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy", required=True,
              help="An input array per model input (repeatable).")
@click.option("-o", "--output", type=click.Path(), help="Save outputs (.npz) by output name.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@seed_option
@set_option
@friendly_errors
def predict(spec, model_name, weights, inputs, output, batch_size, seed, params):
    """Run one model on input arrays and print or save its outputs."""
    graph = _loaded(spec, seed, weights, params)
    model = graph.model(model_name)
    outputs = model.predict(_parse_inputs(inputs), batch_size=batch_size, seed=seed)
    if output:
        save_npz(output, outputs)
        click.echo(f"saved outputs {', '.join(outputs)} to {output}")
        return
    with np.printoptions(precision=6, suppress=True, threshold=200):
        for name, value in outputs.items():
            click.echo(f"{name} {value.shape}:\n{value}")


# -- inspect-nodes ----------------------------------------------------------------------
def _stats(value) -> dict:
    data = np.asarray(value, dtype=np.float64)
    return {"shape": list(value.shape), "mean": float(data.mean()), "std": float(data.std()),
            "min": float(data.min()), "max": float(data.max())}


@main.command("inspect-nodes")
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Only nodes created by this model.")
@click.option("--layer", "layer_name", help="Only nodes of this layer instance.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
              help="Run the model on these inputs and show each node's output statistics.")
@click.option("--weights", type=click.Path())
@seed_option
@set_option
@friendly_errors
def inspect_nodes(spec, model_name, layer_name, fmt, inputs, weights, seed, params):
    """List every call (node) of every layer: inbound tensors and shapes."""
    graph = _loaded(spec, seed, weights, params)
    if layer_name and layer_name not in graph.layers and layer_name not in graph.models:
        raise InputError(f"{spec} has no layer '{layer_name}'")
    stats = {}
    if inputs:
        model = graph.model(model_name)
        model_name = model.name
        stats = node_statistics(model, _parse_inputs(inputs), seed)
    records = []
    for node in graph.nodes(model=model_name, layer=layer_name):
        record = node.describe()
        if inputs:
            record["stats"] = [stats[id(t)] for t in node.output_tensors]
        records.append(record)
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
        return
    click.echo(_node_table(records))


def node_statistics(model, inputs, seed=None) -> dict:
    """Run ``model`` once; statistics of every tensor keyed by id(symbolic tensor)."""
    from .autodiff import Variable, recording
    from .layers.base import CallContext
    arrays = model.check_inputs(inputs)
    ctx = CallContext(training=False, rng=model.graph.rng(seed))
    with recording(False):
        values = model.run([Variable(arrays[n]) for n in model.input_names], ctx)
    tensors = list(model.inputs) + [t for node in model.nodes for t in node.output_tensors]
    return {id(t): _stats(values[t.slot].data) for t in tensors}


def _node_table(records) -> str:
    def shapes(items):
        return ", ".join("(" + ", ".join("None" if d is None else str(d) for d in s) + ")"
                         for s in items)
    header = ["layer", "node", "model", "inbound", "input shapes", "output shapes"]
    rows = [[r["layer"], str(r["node_index"]), r["model"], ", ".join(r["inbound"]),
             shapes(r["input_shapes"]), shapes(r["output_shapes"])] for r in records]
    if records and "stats" in records[0]:
        header.append("output mean/std/min/max")
        for row, r in zip(rows, records):
            row.append("; ".join(f"{s['mean']:.4g}/{s['std']:.4g}/{s['min']:.4g}/{s['max']:.4g}"
                                 for s in r["stats"]))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


# -- train, evaluate --------------------------------------------------------------------
def _job_overrides(loss, optimizer, learning_rate, epochs, batch_size, validation_split,
                   freeze) -> dict:
    overrides = {"epochs": epochs, "batch_size": batch_size,
                 "validation_split": validation_split}
    if loss:
        overrides["loss"] = loss
    if optimizer or learning_rate:
        overrides["optimizer"] = {"type": optimizer or "rmsprop",
                                  **({"learning_rate": learning_rate} if learning_rate else {})}
    if freeze:
        overrides["freeze"] = list(freeze)
    return overrides


@main.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to train (else the job's model).")
@click.option("--job", "job_name", help="Training job of the spec (default: the first).")
@click.option("--data", required=True, type=click.Path(),
              help=".npz with arrays keyed by the model's input and output names.")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--weights", type=click.Path(), help="Start from these weights (.npz).")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Trained weights (.npz, with loss state variables).")
@click.option("--validation-split", type=click.FloatRange(0, 1, max_open=True))
@click.option("--checkpoint", "checkpoint_dir", type=click.Path(file_okay=False),
              help="Directory for a checkpoint after every epoch.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --checkpoint.")
@click.option("--history", type=click.Path(), help="Write the history as JSON here.")
@click.option("--on-nan", type=click.Choice(["stop", "skip"]), default="stop",
              help="What a NaN/Inf loss does: stop with an error, or skip the batch.")
@click.option("--loss", help="Loss for every output (overrides the job).")
@click.option("--optimizer", type=click.Choice(["sgd", "rmsprop", "adam"]))
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True))
@click.option("--freeze", multiple=True, help="Freeze a layer or model for this job.")
@seed_option
@set_option
@friendly_errors
def train(spec, model_name, job_name, data, epochs, batch_size, weights, output,
          validation_split, checkpoint_dir, resume, history, on_nan, loss, optimizer,
          learning_rate, freeze, seed, params):
    """Train a model on DATA.npz; save the trained weights to OUTPUT."""
    from .io.files import load_npz, save_json
    from .train.job import build_job
    from .train.trainer import Trainer
    graph = _loaded(spec, seed, weights, params)
    overrides = _job_overrides(loss, optimizer, learning_rate, epochs, batch_size,
                               validation_split, freeze)
    trainer = Trainer(graph, build_job(graph, job_name, model_name, overrides))
    arrays = load_npz(data)
    result = trainer.fit(arrays, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume,
                         on_nan=on_nan)
    graph.save_weights(output, extra=trainer.state_arrays())
    final = {k: v[-1] for k, v in result.items()}
    click.echo(f"trained '{trainer.model.name}' for {trainer.epoch} epoch(s): " +
               ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    click.echo(f"saved weights to {output}")
    if history:
        save_json(history, result)
        click.echo(f"saved history to {history}")


@main.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name")
@click.option("--job", "job_name")
@click.option("--data", required=True, type=click.Path())
@click.option("--weights", type=click.Path())
@click.option("--batch-size", type=click.IntRange(min=1), default=32)
@click.option("--loss", help="Loss for every output (overrides the job).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@seed_option
@set_option
@friendly_errors
def evaluate(spec, model_name, job_name, data, weights, batch_size, loss, fmt, seed, params):
    """Loss and metrics of a model on DATA.npz (no training)."""
    from .io.files import load_npz
    from .train.job import build_job
    from .train.trainer import Trainer
    graph = _loaded(spec, seed, weights, params)
    job = build_job(graph, job_name, model_name, {"loss": loss} if loss else {})
    result = Trainer(graph, job).evaluate(load_npz(data), batch_size)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))


# -- schema, plot -----------------------------------------------------------------------
@main.command()
@click.option("-o", "--output", type=click.Path(), help="Write to a file instead of stdout.")
@friendly_errors
def schema(output):
    """Print the JSON Schema of specs (for editors and CI)."""
    text = json.dumps(spec_schema(), indent=2) + "\n"
    if output:
        with atomic_write(output, "w") as handle:
            handle.write(text)
        click.echo(f"wrote {output}; add '# yaml-language-server: $schema={output}' to specs",
                   err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to draw (optional if the spec has one).")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid")
@click.option("-o", "--output", type=click.Path(), help="Write to a file instead of stdout.")
@set_option
@friendly_errors
def plot(spec, model_name, fmt, output, params):
    """Draw a model's graph: Mermaid (renders on GitHub) or Graphviz DOT."""
    graph = api.load(spec, seed=0, params=_parse_params(params), initialize=False)
    model = graph.model(model_name)
    text = to_mermaid(model) if fmt == "mermaid" else to_dot(model)
    if output:
        with atomic_write(output, "w") as handle:
            handle.write(text)
        hint = f"dot -Tpng {output} -o graph.png" if fmt == "dot" else \
            "paste it into a ```mermaid block in Markdown"
        click.echo(f"wrote {output}; next: {hint}", err=True)
    else:
        click.echo(text, nl=False)


if __name__ == "__main__":
    main()
