"""``graphspec adapt``: Keras' ``Normalization.adapt`` as a command."""
from __future__ import annotations

import click

from ..io.files import guard_outputs
from ..io.tabular import read_data
from .common import fill_weights, friendly_errors, open_spec, seed_option, set_option
from .data_commands import categories_option, columns_option


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--data", required=True, type=click.Path(),
              help="The data to adapt on: an .npz keyed by model input name, or a "
                   "CSV/Parquet file (columns by --columns).")
@click.option("--layer", "layers", multiple=True,
              help="A Normalization layer to adapt (repeatable; default: all of them).")
@click.option("--weights", type=click.Path(),
              help="Start from these weights (.npz); the other weights are kept as they are.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Weights (.npz) with the adapted mean and variance.")
@columns_option
@categories_option
@seed_option
@set_option
@friendly_errors
def adapt(spec, data, layers, weights, output, columns, categories, seed, params):
    """Compute Normalization layers' mean and variance from data, as Keras' adapt does.

    The statistics are taken over every axis but the layer's own (Keras' ``axis``),
    from the data the layer is called on, and saved with the other weights; train then
    starts from them with --weights.

    \b
    Examples:
      graphspec adapt net.yaml --data train.npz -o adapted.npz
      graphspec adapt net.yaml --data train.csv --columns features=f0:f9 -o adapted.npz
      graphspec adapt net.yaml --data train.npz --layer norm_in --weights w.npz -o w2.npz
    """
    from ..layers.normalization_adapt import adapt_all
    guard_outputs({"-o": output}, {"SPEC": spec, "--weights": weights, "--data": data})
    graph = open_spec(spec, params, weights)
    fill_weights(graph, seed, weights)
    mapping = {}
    if columns or categories:
        from .data_commands import data_mapping
        mapping = data_mapping(graph, None, None, columns, categories)
    arrays = read_data(data, mapping or None, metadata=graph.metadata)[0]
    stats = adapt_all(graph, arrays, list(layers) or None)
    graph.save_weights(output)
    for name, result in stats.items():
        click.echo(f"adapted '{name}' on {int(result['count'])} sample(s)")
    click.echo(f"saved weights to {output}; next: graphspec train {spec} --weights {output} ...")
