"""``graphspec export``: a spec and its weights to a file another runtime reads.

One command for every format; each format is one API function (``EXPORTERS``), so a
new format is one entry here plus its room in ``graphspec/interop``.
"""
from __future__ import annotations

import click

from ..errors import InputError
from ..interop.targets import export_targets
from ..io.files import guard_outputs
from ..io.modelfile import weights_source
from .common import fail, fill_weights, friendly_errors, open_spec, set_option

def _export_onnx(graph, path, model_name, opset=None):
    from ..interop.onnx_export import export_onnx   # onnx is imported only when asked for
    return export_onnx(graph, path, model_name, opset=opset)


def _export_keras(graph, path, model_name, batch_size=None):
    from ..interop.keras_export import export_keras
    return export_keras(graph, path, model_name, batch_size=batch_size)


# format -> (exporter, default extension, what the format is); an exporter takes
# (graph, path, model_name, **options) and returns [(model name, path written)].
EXPORTERS = {
    "onnx": (_export_onnx, ".onnx",
             "ONNX, checked by the onnx package (runs in onnxruntime, TensorRT, ...)"),
    "keras": (_export_keras, ".keras",
              "Keras 3 .keras (config + weights; keras.saving.load_model reads it)"),
}


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name",
              help="Model to export. Without it every model of the spec is exported: "
                   "one file when there is one, else one file per model, -o out.onnx "
                   "writing out.MODEL.onnx for each.")
@click.option("--weights", type=click.Path(),
              help="Weights (.npz) from build or train, written into the file; not needed "
                   "when SPEC is a model file (graphspec pack), which holds its weights.")
@click.option("--format", "fmt", type=click.Choice(sorted(EXPORTERS)), required=True,
              help="Output format: " + "; ".join(f"{k}: {v[2]}" for k, v in EXPORTERS.items())
              + ".")
@click.option("-o", "--output", type=click.Path(), required=True,
              help="File to write (per model: out.MODEL.onnx when several are exported).")
@click.option("--opset", type=int, default=None,
              help="ONNX opset (13 to 21; default 17). Only with --format onnx.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Keras only: the batch size written into the inputs' batch_shape "
                   "(stateful recurrent layers need a fixed one).")
@click.option("--check", "check_rows", type=click.IntRange(min=1), default=None,
              metavar="ROWS",
              help="After writing, run each file in onnxruntime on ROWS random input rows "
                   "and print its largest difference from predict.")
@set_option
@friendly_errors
def export(spec, model_name, weights, fmt, output, opset, batch_size, check_rows, params):
    """Export a model with its weights to another format (ONNX, Keras).

    ONNX is inference only: Dropout is the identity, BatchNormalization uses its moving
    statistics, the batch axis is the symbolic dimension `batch`, inputs and outputs
    keep their spec names. Keras gets the layers, shared instances, sub-models and
    weights as a .keras archive. A layer or expression function the format cannot
    express is refused with its location in the spec, and nothing is written.

    \b
    Examples:
      graphspec export specs/mlp.yaml --weights w.npz --format onnx -o mlp.onnx
      graphspec export specs/vae.yaml --model decoder --weights w.npz --format onnx -o dec.onnx
      graphspec export specs/vqa.yaml --weights w.npz --format onnx -o vqa.onnx --check 4
      graphspec export model.gspec.zip --format keras -o mlp.keras
    """
    if opset is not None and fmt != "onnx":
        raise click.BadParameter("--opset applies to --format onnx only", param_hint="--opset")
    if batch_size is not None and fmt != "keras":
        raise click.BadParameter("--batch-size applies to --format keras only (an ONNX "
                                 "file keeps the batch axis free)", param_hint="--batch-size")
    if check_rows and fmt != "onnx":
        raise click.BadParameter("--check runs ONNX files in onnxruntime; for --format keras "
                                 "load the file with keras.saving.load_model", param_hint="--check")
    if fmt == "keras" and not str(output).endswith(".keras"):
        # keras.saving.load_model goes by the extension: any other name is a file Keras
        # will not open.
        raise click.BadParameter(f"'{output}': a Keras archive must end in .keras",
                                 param_hint="-o")
    guard_outputs({"-o": output}, {"SPEC": spec, "--weights": weights})
    graph = open_spec(spec, params, weights)
    if not weights_source(graph, weights):
        raise click.UsageError("export writes trained weights into the file: give --weights "
                               "W.npz, or a model file (graphspec pack) as SPEC")
    exporter, extension, _ = EXPORTERS[fmt]
    targets = [path for _, path in export_targets(graph, output, model_name, extension)]
    guard_outputs({"-o": targets}, {"SPEC": spec, "--weights": weights})
    fill_weights(graph, None, weights)
    options = {"opset": opset} if fmt == "onnx" else {"batch_size": batch_size}
    written = exporter(graph, output, model_name, **options)
    for name, path in written:
        click.echo(f"wrote {path} (model '{name}', {fmt})")
    if check_rows:
        _check(graph, written, check_rows)
    elif fmt == "onnx":
        click.echo("next: --check ROWS compares it with predict in onnxruntime", err=True)


def _check(graph, written, rows) -> None:
    import onnx
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise InputError("--check runs the files in onnxruntime, which is not installed: "
                         "pip install 'graphspec[onnx]'") from None

    from ..interop.onnx_check import check_against_predict, draws_noise, random_feeds
    bad = []
    for name, path in written:
        model = graph.models[name]
        if draws_noise(model):
            click.echo(f"{path}: not compared: model '{name}' draws random noise, which "
                       "onnxruntime draws from its own generator")
            continue
        report = check_against_predict(model, onnx.load(path), random_feeds(model, rows))
        worst_abs = max(r["max_abs"] for r in report.values())
        worst_rel = max(r["max_rel"] for r in report.values())
        ok = all(r["ok"] for r in report.values())
        click.echo(f"{path}: onnxruntime vs predict on {rows} random rows: max abs "
                   f"{worst_abs:.3g}, max rel {worst_rel:.3g}: {'ok' if ok else 'DIFFERS'}")
        if not ok:
            bad.append(path)
    if bad:
        fail(f"error: {', '.join(bad)} disagree with predict beyond 1e-5 (a graphspec bug: "
             "please report it with the spec)", 1)
