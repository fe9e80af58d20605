"""Pictures: ``graphspec plot`` (the graph of a spec) and ``graphspec plot-history``
(training curves). Thin: parse flags, guard the outputs, call graphspec.viz."""
from __future__ import annotations

import os

import click

from .. import api
from ..io.files import guard_outputs
from ..viz.graph_picture import graph_text, picture_format, plot_graph
from ..viz.history_plot import plot_history
from .common import friendly_errors, parse_params, set_option

MERMAID_MAX_TEXT = 50_000     # mermaid's default maxTextSize
MERMAID_MAX_EDGES = 500       # and maxEdges
_NEXT = {"dot": "render it with: dot -Tsvg {out} -o graph.svg",
         "mmd": "paste it into a ```mermaid block in Markdown"}


@click.command(short_help="Draw the graph of a spec (SVG, PNG, PDF, DOT, Mermaid).")
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", metavar="NAME",
              help="Draw only this model (default: every model of the spec, side by side).")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "mmd", "mermaid"]),
              help="Picture format (default: from -o's extension; Mermaid text on stdout).")
@click.option("-o", "--output", type=click.Path(),
              help="Write the picture here: .svg/.png/.pdf (drawn by Graphviz's dot), "
                   ".dot/.gv or .mmd text. Without -o the text goes to stdout.")
@set_option
@friendly_errors
def plot(spec, model_name, fmt, output, params):
    """Draw the graph of a spec: SVG, PNG, PDF, DOT or Mermaid.

    One box per layer call (name, type, node index, shapes), shared layers in one
    colour, sub-models as clusters, every model of the spec side by side.

    \b
    Examples:
      graphspec plot specs/shared_vision.yaml -o graph.svg
      graphspec plot specs/vae.yaml --model decoder -o decoder.png
      graphspec plot specs/vqa.yaml --set image_size=32 -o vqa.mmd
    """
    guard_outputs({"-o": output}, {"SPEC": spec})
    fmt = "mmd" if fmt == "mermaid" else fmt
    if output:
        fmt = picture_format(output, fmt)      # a wrong extension fails before compiling
    elif fmt not in (None, "dot", "mmd"):
        raise click.BadParameter(f"{fmt} is an image: write it to a file with -o "
                                 f"graph.{fmt}", param_hint="--format")
    graph = api.prepare(spec, None, parse_params(params)).graph   # a spec or a model file
    if not output:
        click.echo(graph_text(graph, fmt or "mmd", model_name), nl=False)
        return
    scene = plot_graph(graph, output, model_name, fmt)
    what = f"{len(scene.boxes())} boxes, {len(scene.clusters)} model(s)"
    hint = _NEXT.get(fmt, "").format(out=output)
    click.echo(f"wrote {output} ({what})" + (f"; {hint}" if hint else ""))
    size = os.path.getsize(output)
    if fmt == "mmd" and (size > MERMAID_MAX_TEXT or len(scene.edges) > MERMAID_MAX_EDGES):
        click.echo(f"note: {output} has {size:,} characters and {len(scene.edges)} edges; "
                   f"Mermaid renderers (GitHub's too) refuse more than {MERMAID_MAX_TEXT:,} "
                   f"and {MERMAID_MAX_EDGES} by default: draw one model with --model, or "
                   "write .svg", err=True)


@click.command("plot-history", short_help="Draw training curves from train --history files.")
@click.argument("histories", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Image to write: .png, .svg or .pdf.")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]),
              help="Image format (default: from -o's extension).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Draw only this metric and its val_ curve (repeatable; default: all).")
@click.option("--log-y", is_flag=True,
              help="Logarithmic y axis, for losses that fall over several decades.")
@friendly_errors
def plot_history_command(histories, output, fmt, metrics, log_y):
    """Draw training curves from history files (PNG, SVG or PDF).

    The files are written by `graphspec train --history H.json`: one panel per metric
    with its val_ curve dashed, epochs on x, several files overlaid.

    \b
    Examples:
      graphspec plot-history history.json -o loss.png
      graphspec plot-history adam.json sgd.json --metric loss -o compare.svg
      graphspec plot-history run.json --log-y -o curves.pdf
    """
    guard_outputs({"-o": output}, {"HISTORY": list(histories)})
    plot_history(histories, output, fmt, metrics, log_y)
    click.echo(f"wrote {output} ({len(histories)} history file(s))")
