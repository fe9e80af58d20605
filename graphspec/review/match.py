"""Which layer of the old graph is which layer of the new one.

Layers match by name first. A layer that disappeared and one that appeared are the same
layer renamed when they have the same type, the same configuration and the same place
in the graph: the same inbound structure (the same model inputs or the same producing
layers, matched through the renames found so far) or the same position in a model's
node order. Renames are found until nothing changes, so a chain of renamed layers is
recognised link by link; a candidate that fits two ways is left as remove + add.
"""
from __future__ import annotations

import json
from collections import Counter

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


class _Places:
    """Where each layer of one graph sits, with the lookups built once per graph."""

    def __init__(self, graph):
        self.graph = graph
        self.inside = _containers(graph)
        self.position = {id(node): (i, len(model.nodes) - 1 - i)
                         for model in graph.models.values() for i, node in enumerate(model.nodes)}

    def of(self, layer, rename) -> set:
        """Its inbound structure and node position, per call (or its wrapper)."""
        found = set()
        for node in layer.inbound_nodes:
            # counted from the start and from the end: a layer inserted before a node
            # keeps the node's place from the end, one inserted after it from the start
            start, end = self.position.get(id(node), (-1, -1))
            found.add(("position", node.model, start))
            found.add(("from end", node.model, end))
            found.add(("inbound", node.model,
                       tuple(_source(t, rename) for t in node.input_tensors)))
        if not layer.inbound_nodes:
            container = self.inside.get(layer.name)
            found.add(("inside", rename(container)) if container else ("unused",))
        return found


def _source(tensor, rename) -> tuple:
    if tensor.history is None:
        return ("input", tensor.name)
    return ("out", rename(tensor.history.layer.name), tensor.history.tensor_index)


def _structure(value):
    """Config data with each wrapped layer replaced by its own type and config, so a
    wrapper and the layer it wraps can both be renamed in one change."""
    if isinstance(value, Layer):
        return {"type": value.TYPE, "config": _structure(value.config)}
    if isinstance(value, Model):
        return value.name
    if isinstance(value, dict):
        return {str(k): _structure(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_structure(v) for v in value]
    return value


def _signature(layer) -> str:
    return layer.TYPE + json.dumps(_structure(layer.config), sort_keys=True, default=str)


def match_layers(old, new) -> dict:
    """``{old layer name: new layer name}`` for every layer present in both graphs.

    Same name and same signature first; then renames; then the remaining same names
    (a config change); then renames again. A same-named pair whose config differs can
    so still be a rename: an inline layer inserted before others shifts the automatic
    names (``dense_1`` becomes ``dense_2``), and saying "dense_1: units 64 → 32" for
    every shifted layer would be wrong twice over (in the report and in migration).
    """
    mapping = {name: name for name in old.layers if name in new.layers
               and _signature(old.layers[name]) == _signature(new.layers[name])}
    old_places, new_places = _Places(old), _Places(new)
    _add_renames(old_places, new_places, mapping)
    taken = set(mapping.values())
    mapping.update({name: name for name in old.layers
                    if name not in mapping and name in new.layers and name not in taken})
    _add_renames(old_places, new_places, mapping)
    return mapping


def _add_renames(old_places, new_places, mapping) -> None:
    while True:
        renames = _find_renames(old_places, new_places, mapping)
        if not renames:
            return
        mapping.update(renames)


def _find_renames(old_places, new_places, mapping) -> dict:
    """One round of renames: old layers with exactly one unmatched new layer of the
    same signature (type and config) sharing a place with it, and vice versa."""
    old, new = old_places.graph, new_places.graph
    taken = set(mapping.values())
    index: dict = {}       # (signature, place) -> unmatched new layer names
    for name, layer in new.layers.items():
        if name not in taken:
            signature = _signature(layer)
            for place in new_places.of(layer, lambda x: x):
                index.setdefault((signature, place), set()).add(name)
    if not index:
        return {}

    def old_name(name):
        return mapping.get(name, f"\0old:{name}") if name in old.layers else name
    picks: dict = {}
    for name, layer in old.layers.items():
        if name in mapping:
            continue
        signature = _signature(layer)
        fits = set()
        for place in old_places.of(layer, old_name):
            fits |= index.get((signature, place), set())
        if len(fits) == 1:
            picks[name] = fits.pop()
    chosen = Counter(picks.values())
    return {o: n for o, n in picks.items() if chosen[n] == 1}
