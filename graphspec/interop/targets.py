"""Which models an export writes, and to which files: one rule for every format's
exporter and for the CLI, which guards those paths before any work starts."""
from __future__ import annotations

import os


def export_targets(graph, path, model_name: str | None, extension: str) -> list:
    """``[(model, path)]``: the named model, or the graph's only model, to ``path``; else
    every model of the graph, one file each, ``out.MODEL.ext`` (``extension`` when
    ``path`` has none)."""
    models = [graph.model(model_name)] if model_name or len(graph.models) == 1 \
        else list(graph.models.values())
    if len(models) == 1:
        return [(models[0], os.fspath(path))]
    root, ext = os.path.splitext(os.fspath(path))
    return [(model, f"{root}.{model.name}{ext or extension}") for model in models]
