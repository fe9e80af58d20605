"""``diff_specs``: what changed between two specs, compared as compiled graphs.

Both specs are compiled without allocating weights, their layers matched (by name, then
by the rename heuristic in :mod:`.match`), and the differences collected as plain data
in a :class:`SpecDiff`, which renders itself as text, JSON or a Markdown table for a
pull-request comment. Comments, formatting, key order and spelling a default out
explicitly change nothing in the compiled graph, so they are not changes.

>>> d = diff_specs("HEAD~1:specs/mlp.yaml", "specs/mlp.yaml", params_new={"input_dim": 64})
>>> d.has_model_changes
True
>>> print(d.to_markdown())     # the table a pull-request comment shows
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ..errors import InputError
from ..graph.walk import iter_layers
from . import weights as _weights
from .match import layer_config, match_layers, plain
from .models import is_changed, model_diff, summary
from .source import load_source


@dataclass
class SpecDiff:
    """The differences between two specs; every section is plain JSON-able data."""
    old: str
    new: str
    model: str | None
    params: list
    layers: dict
    models: list
    training: list
    weights: dict | None = None
    _migration: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def has_model_changes(self) -> bool:
        """True if the specs build or train anything differently (exit status 1)."""
        return any(self.layers.values()) or bool(self.models) or bool(self.training)

    def to_dict(self) -> dict:
        return {"old": self.old, "new": self.new, "model": self.model,
                "changed": self.has_model_changes, "params": self.params,
                "layers": self.layers, "models": self.models, "training": self.training,
                "weights": self.weights}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_text(self) -> str:
        from .render import to_text
        return to_text(self)

    def to_markdown(self) -> str:
        from .render import to_markdown
        return to_markdown(self)

    def migrate(self, output, seed: int = 0) -> dict:
        """Write the old weights that still fit, plus a seeded fresh initialisation of
        the rest, to ``output`` (an .npz the new spec loads with ``strict=True``).
        Returns counts: ``{"copied": n, "initialised": m}``."""
        if self._migration is None:
            raise InputError("nothing to migrate: pass weights= (--weights OLD.npz)")
        return _weights.migrate(*self._migration, output=output, seed=seed)


def _params(graph, overrides) -> dict:
    declared = (graph.spec or {}).get("params") or {}
    values = dict(declared)
    # The values the graph was compiled with (--set, or those a model file records).
    used = getattr(graph, "params", None) or overrides or {}
    values.update({k: v for k, v in used.items() if k in declared})
    return values


def _changed_values(old: dict, new: dict, key: str) -> list:
    """Entries that differ, nested mappings followed key by key (``optimizer.learning_rate``)."""
    changes = []
    for name in list(old) + [n for n in new if n not in old]:
        was, now = old.get(name), new.get(name)
        if isinstance(was, dict) and isinstance(now, dict):
            changes += [dict(c, **{key: f"{name}.{c[key]}"})
                        for c in _changed_values(was, now, key)]
        elif name not in old or name not in new or was != now:
            changes.append({key: name, "old": was, "new": now})
    return changes


def _config_changes(name, old_layer, new_layer, mapping) -> list:
    if old_layer.TYPE != new_layer.TYPE:
        return [{"layer": name, "arg": "type", "old": old_layer.TYPE, "new": new_layer.TYPE}]
    before, after = layer_config(old_layer, mapping), layer_config(new_layer)
    return [{"layer": name, **c} for c in _changed_values(before, after, "arg")]


def _explicit_args(layer) -> dict:
    """The arguments that differ from their defaults (what the spec spelled out)."""
    defaults = {k: s["default"] for k, s in getattr(layer, "ARGS", {}).items()
                if "default" in s}
    return {k: v for k, v in layer_config(layer).items()
            if k not in defaults or plain(defaults[k]) != v}


def _param_count(layer) -> int:
    """The elements of the layer's own weights (a wrapper's are its wrapped layers')."""
    return sum(math.prod(spec.shape) for spec in layer.weight_shapes.values())


def _layers(old, new, mapping, keep) -> dict:
    taken = set(mapping.values())
    added = [{"name": n, "type": layer.TYPE, "args": _explicit_args(layer),
              "params": _param_count(layer)}
             for n, layer in new.layers.items() if n not in taken and keep(n)]
    removed = [{"name": n, "type": layer.TYPE, "params": _param_count(layer)}
               for n, layer in old.layers.items() if n not in mapping and keep(n, old=True)]
    matched = [(o, n) for o, n in mapping.items() if keep(n) or keep(o, old=True)]
    config, trainable = [], []
    for o, n in matched:
        config += _config_changes(n, old.layers[o], new.layers[n], mapping)
        if bool(old.layers[o].trainable) != bool(new.layers[n].trainable):
            trainable.append({"layer": n, "old": bool(old.layers[o].trainable),
                              "new": bool(new.layers[n].trainable)})
    return {"added": added, "removed": removed,
            "renamed": [{"old": o, "new": n, "type": new.layers[n].TYPE}
                        for o, n in matched if o != n],
            "config": config, "trainable": trainable}


def _models(old, new, mapping, only) -> list:
    def rename(name):
        return mapping.get(name, name)
    entries = []
    for name in list(old.models) + [n for n in new.models if n not in old.models]:
        if only is not None and name != only:
            continue
        if name not in new.models:
            entries.append({"name": name, "status": "removed", **summary(old.models[name])})
        elif name not in old.models:
            entries.append({"name": name, "status": "added", **summary(new.models[name])})
        else:
            entry = model_diff(old.models[name], new.models[name], rename)
            if is_changed(entry):
                entries.append({"name": name, "status": "changed", **entry})
    return entries


def _training(old, new, mapping, only) -> list:
    def jobs(graph, rename):
        found = {}
        for name, job in (graph.training or {}).items():
            if isinstance(job, dict) and (only is None or job.get("model") == only):
                job = plain(job)
                if isinstance(job.get("freeze"), list):   # layer names: through renames
                    job["freeze"] = [rename.get(n, n) for n in job["freeze"]]
                found[name] = job
        return found
    before, after = jobs(old, mapping), jobs(new, {})
    entries = []
    for name in list(before) + [n for n in after if n not in before]:
        if name not in after or name not in before:
            entries.append({"job": name, "status": "removed" if name not in after
                            else "added", "changes": []})
        elif before[name] != after[name]:
            entries.append({"job": name, "status": "changed",
                            "changes": _changed_values(before[name], after[name], "key")})
    return entries


def _keep(old, new, mapping, model):
    """A filter on layer names: those the chosen model reaches (all if none chosen)."""
    if model is None:
        return lambda name, old=False: True
    if model not in old.models and model not in new.models:
        raise InputError(f"neither spec has a model '{model}' (old: "
                         f"{', '.join(old.models)}; new: {', '.join(new.models)})")
    def reached(graph):
        return {use.layer.name for use in iter_layers(graph.models[model])} \
            if model in graph.models else set()
    reached_old, reached_new = reached(old), reached(new)
    reached_new |= {mapping[n] for n in reached_old if n in mapping}
    return lambda name, old=False: name in (reached_old if old else reached_new)


def diff_specs(old, new, model: str | None = None, params_old: dict | None = None,
               params_new: dict | None = None, weights=None) -> SpecDiff:
    """Compare two specs (files or ``REV:PATH`` from git) as compiled graphs.

    ``model`` narrows the report to one model and the layers it reaches; ``params_old``
    and ``params_new`` override each side's params (``--set-old``/``--set-new``);
    ``weights`` is an .npz of the OLD spec: the report then says which weights load
    into the new spec unchanged, which change shape and which are new, and
    :meth:`SpecDiff.migrate` writes the migrated file. Raises ``SpecErrors`` for an
    invalid spec and ``InputError`` for an unreadable source or weights file.
    """
    old_graph = load_source(old, params_old)
    new_graph = load_source(new, params_new)
    mapping = match_layers(old_graph, new_graph)
    keep = _keep(old_graph, new_graph, mapping, model)
    result = SpecDiff(
        old=str(old_graph.file), new=str(new_graph.file), model=model,
        params=_changed_values(_params(old_graph, params_old),
                               _params(new_graph, params_new), "name"),
        layers=_layers(old_graph, new_graph, mapping, keep),
        models=_models(old_graph, new_graph, mapping, model),
        training=_training(old_graph, new_graph, mapping, model))
    if weights is not None:
        report, sources, arrays = _weights.compatibility(old_graph, new_graph, mapping, weights)
        result.weights = report
        result._migration = (new_graph, arrays, sources)
    return result
