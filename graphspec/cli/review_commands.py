"""``graphspec diff``: what changed in the model between two specs."""
from __future__ import annotations

import sys

import click

from ..errors import GraphspecError, SpecErrors
from ..io.files import guard_outputs
from ..review.diff import diff_specs
from .common import fail, friendly_errors, parse_params, set_option

FORMATS = ("text", "json", "markdown")


def _params(shared, own, flag) -> dict:
    values = parse_params(shared)
    try:
        values.update(parse_params(own))
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint=flag) from None
    return values


@click.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option("--model", "model_name", help="Report only this model and the layers it reaches.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              help="text for a terminal, json for tools, markdown for a pull-request comment.")
@set_option
@click.option("--set-old", "params_old", multiple=True, metavar="NAME=VALUE",
              help="Override a param of OLD only (repeatable).")
@click.option("--set-new", "params_new", multiple=True, metavar="NAME=VALUE",
              help="Override a param of NEW only (repeatable), e.g. --set-new image_size=64 "
                   "to see the shape ripple.")
@click.option("--weights", type=click.Path(), metavar="OLD.npz",
              help="Weights of OLD: report which load into NEW unchanged, which change "
                   "shape and which are new.")
@click.option("--migrate", is_flag=True,
              help="With --weights and -o: write the weights that still fit plus a seeded "
                   "fresh initialisation of the rest.")
@click.option("-o", "--output", type=click.Path(), metavar="NEW.npz",
              help="Where --migrate writes the new weights (never one of the inputs).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the fresh initialisation of --migrate.")
@friendly_errors
def diff(old, new, model_name, fmt, params, params_old, params_new, weights, migrate,
         output, seed):
    """Compare two specs as compiled models, not as text.

    OLD and NEW are spec files or REV:PATH read from git. Reports layers added, removed,
    renamed, argument changes, trainability, per model the inputs, outputs, nodes, shape
    changes, sharing and parameter totals, and with --weights whether the old weights
    still load. Exit 0 if the models are the same (comments and formatting only), 1 if
    anything changed, 2 on a usage error or an invalid spec.

    \b
    Examples:
      graphspec diff HEAD~1:specs/vae.yaml specs/vae.yaml
      graphspec diff specs/mlp.yaml specs/mlp.yaml --set-new input_dim=64 --format markdown
      graphspec diff old.yaml new.yaml --weights old.npz --migrate -o new.npz
    """
    try:   # first: an empty path or an output naming an input is refused before anything
        guard_outputs({"-o": output}, {"OLD": old, "NEW": new, "--weights": weights})
    except GraphspecError as exc:
        fail(f"error: {exc}", 2)
    if migrate and not (weights and output):
        raise click.UsageError("--migrate needs --weights OLD.npz and -o NEW.npz")
    if output and not migrate:
        raise click.UsageError("-o is where --migrate writes; add --migrate or drop -o")
    old_params = _params(params, params_old, "--set-old")
    new_params = _params(params, params_new, "--set-new")
    try:
        result = diff_specs(old, new, model=model_name, params_old=old_params,
                            params_new=new_params, weights=weights)
        written = result.migrate(output, seed=seed) if migrate else None
    except GraphspecError as exc:   # an invalid spec or input is a usage problem here: 2
        fail(str(exc) if isinstance(exc, SpecErrors) else f"error: {exc}", 2)
    text = {"text": result.to_text, "json": result.to_json,
            "markdown": result.to_markdown}[fmt]()
    click.echo(text, nl=False)
    if written:
        click.echo(f"wrote {output}: {written['copied']} weight(s) copied, "
                   f"{written['initialised']} initialised (seed {seed}); load it with the new "
                   f"spec: --weights {output}", err=True)
    sys.exit(1 if result.has_model_changes else 0)
