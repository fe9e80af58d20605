"""Commands that build and run models: build, predict, inspect-nodes."""
from __future__ import annotations

import click
import numpy as np

from ..errors import InputError
from ..graph.summary import summary
from ..io.files import (OutputDir, dumps_json, guard_outputs, is_directory_output, load_npy,
                        save_npz)
from ..io.tabular import read_data, write_predictions_csv
from ..runtime import memory
from ..runtime.executor import node_statistics
from .common import (check_memory, fill_weights, friendly_errors, input_files, input_labels,
                     max_memory_option, open_spec, seed_option, set_option)
from .data_commands import categories_option, columns_option, data_mapping
from .scale_commands import engine_options, run_predict, wants_streaming


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


allow_nonfinite_option = click.option(
    "--allow-nonfinite", is_flag=True,
    help="Accept NaN/Inf in the outputs (default: an error naming the first node that made "
         "them).")


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to run (optional if the spec has one).")
@click.option("--weights", type=click.Path(),
              help="Weights (.npz) from build or train; not needed when SPEC is a model file.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
              help="An input array per model input (repeatable).")
@click.option("--data", type=click.Path(),
              help="Inputs from a CSV/Parquet file (columns as recorded in the model file, or "
                   "--columns) or an .npz keyed by input name.")
@columns_option
@categories_option
@click.option("-o", "--output", type=click.Path(),
              help="Save outputs: .npy (one output), .npz by output name or DIR/ (NAME.npy "
                   "each), written batch by batch; or .csv (category names for outputs "
                   "trained on categories).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Rows per step (default: 32 when streaming to -o .npy/.npz/DIR or on "
                   "Dask, else all rows at once); lowers memory.")
@allow_nonfinite_option
@max_memory_option
@seed_option
@set_option
@engine_options
@friendly_errors
def predict(spec, model_name, weights, inputs, data, columns, categories, output, batch_size,
            allow_nonfinite, max_memory, seed, params, engine, scheduler, chunk_rows, workers):
    """Run one model on input arrays and print or save its outputs.

    \b
    Examples:
      graphspec predict specs/mlp.yaml --weights w.npz --input pixels=x.npy
      graphspec predict model.gspec.zip --data new_rows.csv -o predictions.csv
      graphspec predict specs/mlp.yaml --weights w.npz --input pixels=big.npy -o out.npy \\
          --engine dask --scheduler tcp://head:8786
    """
    files = input_files(inputs)
    if not files and not data:
        raise click.UsageError("give the inputs: --input NAME=FILE.npy (per input) or "
                               "--data FILE.csv|.parquet|.npz")
    read = {"SPEC": spec, "--weights": weights, "--data": data, **input_labels(files)}
    into_dir = is_directory_output(output)     # -o DIR/: NAME.npy per output
    guard_outputs({"-o": OutputDir(output) if into_dir else output}, read)
    graph = open_spec(spec, params, weights)
    model = graph.model(model_name)
    if into_dir:       # now the files are known: none of them may be an input
        guard_outputs({"-o": OutputDir(output, tuple(f"{n}.npy" for n in
                                                      model.output_names))}, read)
    if not data and wants_streaming(output, engine):
        # Batch by batch from memory-mapped .npy windows to -o on disk (or on Dask):
        # memory is bounded by the batch, not by the rows.
        check_memory(model, batch_size or 32, max_memory, weights)
        seed = fill_weights(graph, seed, weights, warn_if_random=True)
        outputs = run_predict(model, files, output, engine, batch_size, chunk_rows, scheduler,
                              workers, seed, allow_nonfinite=allow_nonfinite)
        if output:
            click.echo(f"saved outputs {', '.join(model.output_names)} to {output}")
        else:
            _print_outputs(outputs)
        return
    arrays = {name: load_npy(path) for name, path in files.items()}
    if data:
        mapping = data_mapping(graph, None, model.name, columns, categories) or None
        table = read_data(data, mapping, model.input_names, graph.metadata)[0]
        # The same file as train/evaluate read: its targets (and other arrays) are not
        # inputs, and predicting on a test set is an everyday thing to do.
        arrays.update({k: v for k, v in table.items() if k in model.input_names})
    rows = _rows(arrays)
    # Every row's outputs are kept, then joined: twice their size on top of the run.
    outputs = {"outputs": 2 * rows * memory.output_bytes_per_sample(model)}
    check_memory(model, batch_size or rows, max_memory, weights, extra=outputs)
    seed = fill_weights(graph, seed, weights, warn_if_random=True)
    outputs = model.predict(arrays, batch_size=batch_size, seed=seed,
                            allow_nonfinite=allow_nonfinite)
    if output and output.lower().endswith(".csv"):
        names = write_predictions_csv(output, outputs,
                                      (graph.metadata or {}).get("vocabularies"))
        click.echo(f"saved columns {', '.join(names)} to {output}")
    elif into_dir or (output and output.lower().endswith(".npy")):
        # DIR/ (NAME.npy each) or one .npy: the streamed path's writer, so -o x.npy holds
        # a .npy whatever path computed it (save_npz would write a zip under that name).
        from ..engines.outputs import save_outputs
        save_outputs(output, outputs)
        click.echo(f"saved outputs {', '.join(outputs)} to {output}")
    elif output:
        save_npz(output, outputs)
        click.echo(f"saved outputs {', '.join(outputs)} to {output}")
    else:
        _print_outputs(outputs)


def _print_outputs(outputs: dict) -> None:
    with np.printoptions(precision=6, suppress=True, threshold=200):
        for name, value in outputs.items():
            click.echo(f"{name} {value.shape}:\n{value}")


# -- inspect-nodes ----------------------------------------------------------------------
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
    graph = open_spec(spec, params, weights)
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


def _node_table(records) -> str:
    def shapes(items):
        return ", ".join("(" + ", ".join("None" if d is None else str(d) for d in s) + ")"
                         for s in items)
    header = ["layer", "node", "model", "inbound", "input shapes", "output shapes"]
    rows = [[r["layer"], str(r["node_index"]), r["model"], ", ".join(r["inbound"]),
             shapes(r["input_shapes"]), shapes(r["output_shapes"])] for r in records]
    if any(any(r.get("output_masks") or ()) for r in records):
        # Which tensors carry a mask (Embedding mask_zero, Masking), and from where.
        header.append("mask from")
        for row, r in zip(rows, records):
            row.append(", ".join(m or "-" for m in r["output_masks"]))
    if records and "stats" in records[0]:
        header.append("output mean/std/min/max")
        for row, r in zip(rows, records):
            row.append("; ".join(f"{s['mean']:.4g}/{s['std']:.4g}/{s['min']:.4g}/{s['max']:.4g}"
                                 + (f" ({s['masked']:.0%} masked)" if "masked" in s else "")
                                 for s in r["stats"]))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


