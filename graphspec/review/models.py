"""What changed in one model: interface, nodes, shapes, sharing, trainability, params.

Nodes are matched by their layer (through the renames) and by which call of that layer
they are within the model (``dense_1``, or ``shared[1]`` for the second call). A node's
inputs are compared by where they come from (a model input, or output i of a matched
node), so renaming a tensor in the spec is not a change, while rewiring a call is.
"""
from __future__ import annotations

from ..graph.walk import iter_layers, param_count


def shape_text(shape) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _nodes(model, rename) -> dict:
    """``{(layer name, call k): record}`` in execution order, names through ``rename``."""
    index, counts, produced = {}, {}, {}
    for node in model.nodes:
        name = rename(node.layer.name)
        key = (name, counts.get(name, 0))
        counts[name] = key[1] + 1
        sources = tuple(("input", t.name) if id(t) not in produced else produced[id(t)]
                        for t in node.input_tensors)
        for i, tensor in enumerate(node.output_tensors):
            produced[id(tensor)] = ("node", key, i)
        origins = [t.name if source[0] == "input" else f"{t.name} from {_call_name(source[1])}"
                   for t, source in zip(node.input_tensors, sources)]
        index[key] = {"layer": node.layer, "sources": sources, "origins": origins,
                      "inputs": [t.name for t in node.input_tensors],
                      "outputs": [t.name for t in node.output_tensors],
                      "shapes": [shape_text(t.shape) for t in node.output_tensors]}
    for key, record in index.items():
        record["label"] = key[0] if counts[key[0]] == 1 else f"{key[0]}[{key[1]}]"
    return index


def _call_name(key) -> str:
    return key[0] if key[1] == 0 else f"{key[0]}[{key[1]}]"


def _tensors(tensors) -> dict:
    return {t.name: {"shape": shape_text(t.shape), "dtype": t.dtype} for t in tensors}


def _interface(old: dict, new: dict) -> dict:
    changed = [{"name": n, "old": f"{old[n]['shape']} {old[n]['dtype']}",
                "new": f"{new[n]['shape']} {new[n]['dtype']}"}
               for n in new if n in old and old[n] != new[n]]
    kept_old, kept_new = [n for n in old if n in new], [n for n in new if n in old]
    reordered = [] if kept_old == kept_new else [{"old": kept_old, "new": kept_new}]
    return {"added": [dict(name=n, **new[n]) for n in new if n not in old],
            "removed": [dict(name=n, **old[n]) for n in old if n not in new],
            "changed": changed, "reordered": reordered}


def _node_entry(record) -> dict:
    return {"node": record["label"], "type": record["layer"].TYPE,
            "inputs": record["inputs"], "outputs": record["outputs"],
            "shapes": record["shapes"]}


def _node_changes(old_nodes: dict, new_nodes: dict) -> dict:
    rewired, shapes = [], []
    for key, new in new_nodes.items():
        old = old_nodes.get(key)
        if old is None:
            continue
        if old["sources"] != new["sources"]:
            rewired.append({"node": new["label"], "old": old["origins"],
                            "new": new["origins"]})
        for i, (was, now) in enumerate(zip(old["shapes"], new["shapes"])):
            if was != now:
                shapes.append({"tensor": new["outputs"][i], "node": new["label"],
                               "old": was, "new": now})
    return {"added": [_node_entry(r) for k, r in new_nodes.items() if k not in old_nodes],
            "removed": [_node_entry(r) for k, r in old_nodes.items() if k not in new_nodes],
            "rewired": rewired, "shapes": shapes}


def _sharing(old_nodes: dict, new_nodes: dict) -> list:
    def calls(nodes):
        counted: dict = {}
        for name, _ in nodes:
            counted[name] = counted.get(name, 0) + 1
        return counted
    before, after = calls(old_nodes), calls(new_nodes)
    return [{"layer": name, "old": before[name], "new": count,
             "now": "shared" if count > 1 else "not shared"}
            for name, count in after.items()
            if name in before and (before[name] > 1) != (count > 1)]


def _trainability(old_model, new_model, rename) -> list:
    """Layers with weights whose effective trainable flag (the one walk's) changed."""
    def flags(model, name):
        return {name(use.layer.name): use.trainable for use in iter_layers(model)
                if use.layer.weight_shapes}
    before, after = flags(old_model, rename), flags(new_model, lambda n: n)
    return [{"layer": n, "old": before[n], "new": flag}
            for n, flag in after.items() if n in before and before[n] != flag]


def param_totals(model) -> dict:
    """Parameter counts as a job on ``model`` trains it: total, trainable, non-trainable."""
    trainable, frozen = param_count(model)
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def _totals(old_model, new_model) -> dict:
    old, new = param_totals(old_model), param_totals(new_model)
    return {"old": old, "new": new, "delta": {k: new[k] - old[k] for k in new}}


def summary(model) -> dict:
    """A model only one side has: its interface and size."""
    return {"inputs": [dict(name=n, **v) for n, v in _tensors(model.inputs).items()],
            "outputs": [dict(name=n, **v) for n, v in _tensors(model.outputs).items()],
            "nodes": len(model.nodes), "params": param_totals(model)}


def model_diff(old_model, new_model, rename) -> dict:
    """Every difference between two versions of one model (empty lists if none)."""
    old_nodes, new_nodes = _nodes(old_model, rename), _nodes(new_model, lambda n: n)
    trainable = [] if bool(old_model.trainable) == bool(new_model.trainable) else \
        [{"old": bool(old_model.trainable), "new": bool(new_model.trainable)}]
    outputs = _interface(_tensors(old_model.outputs), _tensors(new_model.outputs))
    nodes = _node_changes(old_nodes, new_nodes)
    listed = {c["name"] for c in outputs["changed"]}     # said once, as an output change
    nodes["shapes"] = [s for s in nodes["shapes"] if s["tensor"] not in listed]
    return {"trainable": trainable,
            "inputs": _interface(_tensors(old_model.inputs), _tensors(new_model.inputs)),
            "outputs": outputs, "nodes": nodes,
            "sharing": _sharing(old_nodes, new_nodes),
            "effective_trainable": _trainability(old_model, new_model, rename),
            "params": _totals(old_model, new_model)}


def is_changed(entry: dict) -> bool:
    """Whether a ``model_diff`` result holds any change."""
    parts = [entry["trainable"], entry["sharing"], entry["effective_trainable"]]
    parts += list(entry["inputs"].values()) + list(entry["outputs"].values())
    parts += list(entry["nodes"].values())
    return any(parts) or any(entry["params"]["delta"].values())
