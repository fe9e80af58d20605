"""Commands about the spec itself: validate, schema."""
from __future__ import annotations

import json
import os
import sys

import click

from .. import api
from ..io.files import atomic_write, dumps_json, guard_outputs
from ..spec.schema import spec_schema
from .common import fail, friendly_errors, parse_params, set_option


def _spec_files(paths) -> list:
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names)
                          if n.endswith((".yaml", ".yml"))]
        elif os.path.exists(path):
            files.append(path)
        else:   # a mistyped path is a usage error (exit 2), not an invalid spec
            fail(f"error: cannot read '{path}': no such file or directory", 2)
    return files


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              help="text for people, json for scripts, github for ::error annotations in "
                   "GitHub Actions.")
@set_option
@friendly_errors
def validate(paths, fmt, params):
    """Check specs (files or directories): schema, references, cycles and shapes.

    Exit 0 if every spec is valid, 1 if any is not, 2 on usage errors (a missing file).

    \b
    Examples:
      graphspec validate specs/
      graphspec validate specs/mlp.yaml --set input_dim=64
      graphspec validate --format github specs/
    """
    overrides = parse_params(params)
    files = _spec_files(paths)
    if not files:
        fail("error: no .yaml/.yml spec files found in " + ", ".join(paths), 2)
    report, invalid = [], 0
    for file in files:
        warnings: list = []
        errors = api.validate(file, overrides, warnings=warnings)
        invalid += bool(errors)
        report.append((file, errors, warnings))
    if fmt == "json":
        click.echo(dumps_json([{"file": f, "valid": not errs,
                                "errors": [e.as_dict() for e in errs],
                                "warnings": [w.as_dict() for w in warns]}
                               for f, errs, warns in report], indent=2))
    else:
        if fmt == "github":
            # The one GitHub annotation writer (escapes %, newlines, ',' and ':' in properties).
            from ..review.action import annotation
        for file, errors, warnings in report:
            for level, e in [("error", e) for e in errors] + \
                    [("warning", w) for w in warnings]:
                if fmt == "github":
                    message = f"{e.path}: {e.message}" if e.path else e.message
                    click.echo(annotation(level, e.file, message, e.line, e.col,
                                          "graphspec validate"))
                else:
                    click.echo(e.format() if level == "error" else f"warning: {e.format()}")
            if fmt == "text" and not errors:
                click.echo(f"{file}: ok")
        if fmt == "text":
            click.echo(f"{len(files) - invalid} of {len(files)} spec(s) valid", err=True)
    sys.exit(1 if invalid else 0)



@click.command()
@click.option("-o", "--output", type=click.Path(), help="Write to a file instead of stdout.")
@friendly_errors
def schema(output):
    """Print the JSON Schema of specs (for editors and CI).

    \b
    Examples:
      graphspec schema -o graphspec.schema.json
      graphspec schema | python -m json.tool | less
    """
    guard_outputs({"-o": output}, {})
    text = json.dumps(spec_schema(), indent=2) + "\n"
    if output:
        with atomic_write(output, "w") as handle:
            handle.write(text)
        click.echo(f"wrote {output}; add '# yaml-language-server: $schema={output}' to specs",
                   err=True)
    else:
        click.echo(text, nl=False)
