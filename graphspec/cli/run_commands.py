"""Commands that build and run models: build, predict, inspect-nodes."""
from __future__ import annotations

import json

import click
import numpy as np

from .. import api
from ..autodiff import Variable, recording
from ..errors import InputError
from ..graph.summary import summary
from ..io.files import guard_outputs, save_npz
from ..layers.base import CallContext
from .common import (friendly_errors, input_files, input_labels, load_graph, parse_inputs,
                     parse_params, seed_option, set_option)


@click.command()
@click.argument("spec", type=click.Path())
@seed_option
@click.option("-o", "--output", type=click.Path(), help="Save initial weights (.npz).")
@set_option
@friendly_errors
def build(spec, seed, output, params):
    """Compile every model, print its summary, optionally save initial weights."""
    guard_outputs({"-o": output}, {"SPEC": spec})
    graph = api.load(spec, seed=seed, params=parse_params(params))
    for model in graph.models.values():
        click.echo(summary(model))
        click.echo()
    if output:
        graph.save_weights(output)
        click.echo(f"saved {len(graph.weights())} weight arrays to {output}")
    else:
        click.echo("next: graphspec predict SPEC --input NAME=FILE.npy, or -o W.npz to save "
                   "these weights", err=True)



@click.command()
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
    guard_outputs({"-o": output}, {"SPEC": spec, "--weights": weights,
                                   **input_labels(input_files(inputs))})
    graph = load_graph(spec, seed, weights, params)
    model = graph.model(model_name)
    outputs = model.predict(parse_inputs(inputs), batch_size=batch_size, seed=seed)
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
    guard_outputs({}, {"SPEC": spec, "--weights": weights, **input_labels(input_files(inputs))})
    graph = load_graph(spec, seed, weights, params)
    if layer_name and layer_name not in graph.layers and layer_name not in graph.models:
        raise InputError(f"{spec} has no layer '{layer_name}'")
    stats = {}
    if inputs:
        model = graph.model(model_name)
        model_name = model.name
        stats = node_statistics(model, parse_inputs(inputs), seed)
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


