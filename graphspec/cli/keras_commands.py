"""``graphspec import-keras``: a Keras 3 model becomes a reviewable spec plus weights.

The reverse direction is ``graphspec export --format keras``: its exporter table
entry is :func:`graphspec.interop.keras_export.export_keras`.
"""
from __future__ import annotations

import click

from ..errors import InputError
from ..io.files import atomic_write, guard_outputs, save_npz
from .common import friendly_errors


@click.command("import-keras")
@click.argument("model_file", metavar="MODEL.keras|CONFIG.json", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Spec file to write (.yaml).")
@click.option("--weights-out", type=click.Path(),
              help="Also write the model's weights (.npz, for --weights of predict, "
                   "evaluate and train). Needs a .keras file, not a bare config.json.")
@friendly_errors
def import_keras(model_file, output, weights_out):
    """Turn a Keras 3 Functional or Sequential model into a spec (and its weights).

    The file is read as data (zip, JSON, HDF5): a Lambda layer, a custom object or any
    class outside Keras' own layers is refused with its JSON path; rewrite it as a
    graphspec expression layer (type: Lambda or Merge). Layer names, shared layers
    and their node indices, nested models (as sub-models) and every input and output
    carry over.

    \b
    Examples:
      graphspec import-keras model.keras -o model.yaml --weights-out model.npz
      graphspec import-keras config.json -o model.yaml
      graphspec inspect-nodes model.yaml --weights model.npz
    """
    guard_outputs({"-o": output, "--weights-out": weights_out},
                  {"MODEL.keras|CONFIG.json": model_file})
    from ..interop.keras_import import import_keras as convert, weights_as_float32
    result = convert(model_file)
    if weights_out and result.weights is None:
        raise InputError(f"{model_file} is a bare config.json and holds no weights: pass "
                         "the .keras file, or leave out --weights-out")
    with atomic_write(output, "w") as handle:
        handle.write(result.text)
    models = ", ".join(result.spec["models"])
    click.echo(f"wrote {output}: {len(result.spec.get('layers', {}))} layer(s), "
               f"model(s) {models}")
    for keras_name, name in result.renamed.items():
        click.echo(f"  renamed '{keras_name}' -> '{name}' (spec names are "
                   "[A-Za-z_][A-Za-z0-9_]*, unique across layers and models)")
    if weights_out:
        save_npz(weights_out, weights_as_float32(result.weights))
        click.echo(f"wrote {weights_out}: {len(result.weights)} weight array(s)")
    top = list(result.spec["models"])[-1]
    hint = f" --weights {weights_out}" if weights_out else ""
    click.echo(f"next: graphspec inspect-nodes {output} --model {top}{hint}", err=True)

