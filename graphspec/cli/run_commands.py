"""Commands that build and run models: build, predict, inspect-nodes."""
from __future__ import annotations

import click
import numpy as np

from ..autodiff import Variable, recording
from ..errors import InputError
from ..graph.summary import summary
from ..io.files import dumps_json, guard_outputs, load_npy, save_npz
from ..layers.base import CallContext
from ..runtime import memory
from .common import (check_memory, fill_weights, friendly_errors, input_files, input_labels,
                     max_memory_option, open_spec, seed_option, set_option)


@click.command()
@click.argument("spec", type=click.Path())
@seed_option
@click.option("-o", "--output", type=click.Path(), help="Save the initial weights (.npz).")
@max_memory_option
@set_option
@friendly_errors
def build(spec, seed, output, max_memory, params):
    """Compile every model, print its summary, optionally save initial weights.

    \b
    Examples:
      graphspec build specs/mlp.yaml
      graphspec build specs/mlp.yaml --set input_dim=64 --seed 0 -o w.npz
      graphspec build specs/vqa.yaml --max-memory 2G
    """
    guard_outputs({"-o": output}, {"SPEC": spec})
    graph = open_spec(spec, params)
    estimates = {name: check_memory(model, 0, max_memory) for name, model in graph.models.items()}
    fill_weights(graph, seed, None)
    for name, model in graph.models.items():
        click.echo(summary(model))
        click.echo(f"estimated memory: {estimates[name].describe()}")
        click.echo()
    if output:
        graph.save_weights(output)
        click.echo(f"saved {len(graph.weights())} weight arrays to {output}")
    else:
        click.echo("next: graphspec predict SPEC --input NAME=FILE.npy, or -o W.npz to save "
                   "these weights", err=True)


def _rows(arrays: dict) -> int:
    return max((a.shape[0] for a in arrays.values() if a.ndim), default=1)


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to run (optional if the spec has one).")
@click.option("--weights", type=click.Path(), help="Weights (.npz) from build or train.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy", required=True,
              help="An input array per model input (repeatable).")
@click.option("-o", "--output", type=click.Path(), help="Save outputs (.npz) by output name.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Run this many rows at a time (default: all at once); lowers memory.")
@max_memory_option
@seed_option
@set_option
@friendly_errors
def predict(spec, model_name, weights, inputs, output, batch_size, max_memory, seed, params):
    """Run one model on input arrays and print or save its outputs.

    \b
    Examples:
      graphspec predict specs/mlp.yaml --weights w.npz --input pixels=x.npy
      graphspec predict specs/mlp.yaml --weights w.npz --input pixels=x.npy -o out.npz
      graphspec predict specs/multi_io.yaml --weights w.npz --input main_input=t.npy \\
          --input aux_input=a.npy --batch-size 256
    """
    files = input_files(inputs)
    guard_outputs({"-o": output}, {"SPEC": spec, "--weights": weights, **input_labels(files)})
    graph = open_spec(spec, params)
    model = graph.model(model_name)
    arrays = {name: load_npy(path) for name, path in files.items()}
    rows = _rows(arrays)
    # Every row's outputs are kept, then joined: twice their size on top of the run.
    outputs = {"outputs": 2 * rows * memory.output_bytes_per_sample(model)}
    check_memory(model, batch_size or rows, max_memory, weights, extra=outputs)
    seed = fill_weights(graph, seed, weights, warn_if_random=True)
    outputs = model.predict(arrays, batch_size=batch_size, seed=seed)
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
            "min": float(data.min()) + 0.0, "max": float(data.max()) + 0.0}


@click.command("inspect-nodes")
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Only nodes created by this model.")
@click.option("--layer", "layer_name", help="Only nodes of this layer instance (or sub-model).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              help="table for people (with the memory estimate), json for scripts.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
              help="Run the model on these inputs and show each node's output statistics.")
@click.option("--weights", type=click.Path(),
              help="Weights (.npz) for the statistics (default: fresh random weights).")
@max_memory_option
@seed_option
@set_option
@friendly_errors
def inspect_nodes(spec, model_name, layer_name, fmt, inputs, weights, max_memory, seed, params):
    """List every call (node) of every layer: inbound tensors and shapes.

    \b
    Examples:
      graphspec inspect-nodes specs/shared_entry.yaml
      graphspec inspect-nodes specs/mlp.yaml --layer dense_1 --format json
      graphspec inspect-nodes specs/mlp.yaml --weights w.npz --input pixels=x.npy
    """
    files = input_files(inputs)
    guard_outputs({}, {"SPEC": spec, "--weights": weights, **input_labels(files)})
    graph = open_spec(spec, params)
    if model_name is not None:
        graph.model(model_name)            # an unknown model is an error, not an empty table
    if layer_name and layer_name not in graph.layers and layer_name not in graph.models:
        raise InputError(f"{spec} has no layer '{layer_name}'")
    models = [graph.model(model_name)] if model_name or files else list(graph.models.values())
    arrays = {name: load_npy(path) for name, path in files.items()}
    for name, array in arrays.items():
        if array.ndim and not array.shape[0]:
            raise InputError(f"--input {name}: {files[name]} has 0 rows (shape {array.shape}); "
                             "node statistics need at least one sample")
    estimates = [check_memory(m, _rows(arrays) if arrays else 0, max_memory, weights)
                 for m in models]
    seed = fill_weights(graph, seed, weights, warn_if_random=bool(files))
    stats = node_statistics(models[0], arrays, seed) if files else {}
    records = []
    for node in graph.nodes(model=model_name or (models[0].name if files else None),
                            layer=layer_name):
        record = node.describe()
        if files:
            record["stats"] = [stats[id(t)] for t in node.output_tensors]
        records.append(record)
    if fmt == "json":
        click.echo(dumps_json(records, indent=2))
        return
    click.echo(_node_table(records))
    for est in estimates:
        click.echo(f"estimated memory of '{est.model}': {est.describe()}")


def node_statistics(model, inputs, seed=None) -> dict:
    """Run ``model`` once; statistics of every tensor keyed by id(symbolic tensor)."""
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


