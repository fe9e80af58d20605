"""Which layer of the old graph is which layer of the new one.

Layers match by name first. A layer that disappeared and one that appeared are the same
layer renamed when they have the same type, the same configuration and the same place
in the graph: the same inbound structure (the same model inputs or the same producing
layers, matched through the renames found so far) or the same position in a model's
node order. Renames are found until nothing changes, so a chain of renamed layers is
recognised link by link; a candidate that fits two ways is left as remove + add.
"""
from __future__ import annotations

from ..graph.model import Model
from ..layers.base import Layer


def plain(value, rename: dict | None = None):
    """A config value as JSON-able data; a wrapped layer or model becomes its name
    (the new name, through ``rename``)."""
    if isinstance(value, (Layer, Model)):
        return (rename or {}).get(value.name, value.name)
    if isinstance(value, dict):
        return {str(k): plain(v, rename) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, rename) for v in value]
    return value


def layer_config(layer, rename: dict | None = None) -> dict:
    """The layer's arguments (defaults filled in) as plain data, in declaration order."""
    declared = [a for a in getattr(layer, "ARGS", {}) if a in layer.config]
    order = declared + [a for a in layer.config if a not in declared]
    return {arg: plain(layer.config[arg], rename) for arg in order}


def _containers(graph) -> dict:
    """Name of each layer that has no calls of its own -> the layer that wraps it."""
    inside = {}
    for layer in graph.layers.values():
        for inner in layer.sublayers():
            inside.setdefault(inner.name, layer.name)
    return inside


def _source(tensor, rename) -> tuple:
    if tensor.history is None:
        return ("input", tensor.name)
    return ("out", rename(tensor.history.layer.name), tensor.history.tensor_index)


def places(graph, layer, rename, inside: dict) -> set:
    """Where ``layer`` sits: its inbound structure and node positions, per call
    (``inside``: the wrapper of each layer that has no calls, from ``_containers``)."""
    found = set()
    for node in layer.inbound_nodes:
        model = graph.models.get(node.model)
        position = next((i for i, n in enumerate(model.nodes) if n is node), -1) \
            if model is not None else -1
        found.add(("position", node.model, position))
        found.add(("inbound", node.model, tuple(_source(t, rename) for t in node.input_tensors)))
    if not layer.inbound_nodes:
        container = inside.get(layer.name)
        found.add(("inside", rename(container)) if container else ("unused",))
    return found


def match_layers(old, new) -> dict:
    """``{old layer name: new layer name}`` for every layer present in both graphs."""
    mapping = {name: name for name in old.layers if name in new.layers}
    while True:
        renames = _find_renames(old, new, mapping)
        if not renames:
            return mapping
        mapping.update(renames)


def _find_renames(old, new, mapping) -> dict:
    taken = set(mapping.values())
    removed = [n for n in old.layers if n not in mapping]
    added = [n for n in new.layers if n not in taken]
    if not removed or not added:
        return {}

    def old_name(name):
        return mapping.get(name, f"\0old:{name}") if name in old.layers else name
    new_inside, old_inside = _containers(new), _containers(old)
    new_places = {n: places(new, new.layers[n], lambda x: x, new_inside) for n in added}
    new_configs = {n: layer_config(new.layers[n]) for n in added}
    picks: dict = {}
    for name in removed:
        layer = old.layers[name]
        config, where = layer_config(layer, mapping), places(old, layer, old_name, old_inside)
        fits = [a for a in added if new.layers[a].TYPE == layer.TYPE
                and new_configs[a] == config and new_places[a] & where]
        if len(fits) == 1:
            picks[name] = fits[0]
    chosen = list(picks.values())
    return {o: n for o, n in picks.items() if chosen.count(n) == 1}
