"""Keras' recorded masks, checked against the masks graphspec propagates.

A Keras 3 functional config records the mask a layer was given as a ``mask`` call
argument, a tensor made by operation nodes Keras added while building the model:
``NotEqual(tokens, 0)`` for ``Embedding(mask_zero=True)``, ``Any(NotEqual(x, v),
axis=-1)`` for ``Masking(v)``, ``LogicalOr`` where a merge combines masks. graphspec
makes and propagates the same masks itself (Keras' rules, at compile time), so these
operations are not imported as layers. Instead each recorded mask is reduced to the
steps it keeps, an OR of terms "``t != 0``" (an Embedding's input) and "``any(x != v)``"
(a Masking layer's input), and must equal the mask graphspec gives that input; anything
else (a mask passed explicitly, or made by other operations) is refused by name.
"""
from __future__ import annotations

from ..layers.base import call_mask_sources
from .keras_layers import OPS_MODULE

# The Keras operations of the masks Embedding, Masking and the merges make.
# (ConvertToTensor: Attention's compute_mask passes the query's mask through it.)
MASK_OPS = ("NotEqual", "Any", "LogicalOr", "ConvertToTensor")


def _tensor_keys(value, depth=0):
    """The [layer, node, tensor] triples of the Keras tensors in a call argument."""
    if isinstance(value, list) and depth < 8:
        for item in value:
            yield from _tensor_keys(item, depth + 1)
    elif isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        history = (value.get("config") or {}).get("keras_history")
        if isinstance(history, list) and len(history) == 3:
            yield tuple(history)


def mask_only_operations(layers: list, outputs) -> dict:
    """``{keras name: serialized op}`` of the mask operations (``MASK_OPS``) whose
    results are only ever used as masks (a layer's ``mask`` argument, or another such
    operation): these are not imported as layers."""
    candidates = {}
    for obj in layers:
        if isinstance(obj, dict) and obj.get("module") in (OPS_MODULE, "keras.src.ops.core") \
                and obj.get("class_name") in MASK_OPS \
                and obj.get("registered_name") in (None, obj.get("class_name")):
            candidates[obj.get("name")] = obj
    value_uses = []          # (user, used layer)
    for obj in layers:
        user = obj.get("name") if isinstance(obj, dict) else None
        for node in (obj.get("inbound_nodes") or []) if isinstance(obj, dict) else []:
            if not isinstance(node, dict):
                continue
            kwargs = node.get("kwargs") if isinstance(node.get("kwargs"), dict) else {}
            rest = [node.get("args")] + [v for k, v in kwargs.items() if k != "mask"]
            value_uses += [(user, key[0]) for key in _tensor_keys(rest)]
    value_uses += [(None, key[0]) for key in _tensor_keys(_as_list(outputs))]
    changed = True
    while changed:
        changed = False
        for user, used in value_uses:
            if used in candidates and user not in candidates:
                del candidates[used]
                changed = True
    return candidates


def _as_list(value):
    if isinstance(value, dict):
        return [_as_list(v) for v in value.values()]
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [{"class_name": "__keras_tensor__", "config": {"keras_history": value}}]
    return [_as_list(v) for v in value] if isinstance(value, list) else []


class MaskForms:
    """The steps a recorded Keras mask keeps, as a frozenset of OR-ed terms
    ``("ne", tensor, value)`` / ``("any_ne", tensor, value)`` over spec tensor names."""

    def __init__(self, operations: dict, tensors: dict):
        self.operations, self.tensors = operations, tensors

    def form(self, key: tuple):
        """The form of the Keras tensor ``key``, or a string saying why there is none."""
        op = self.operations.get(key[0])
        if op is None:
            return f"made by layer '{key[0]}', not by the operations Keras adds for masks"
        cls = op["class_name"]
        nodes = op.get("inbound_nodes") or [{}]
        args = nodes[0].get("args") if isinstance(nodes[0], dict) else None
        args = args if isinstance(args, list) else []
        tensors = list(_tensor_keys(args))
        if cls == "NotEqual" and len(args) == 2 and len(tensors) == 1 \
                and type(args[1]) in (int, float) and tensors[0] in self.tensors:
            return frozenset({("ne", self.tensors[tensors[0]], float(args[1]))})
        if cls == "LogicalOr" and len(tensors) == 2:
            a, b = self.form(tensors[0]), self.form(tensors[1])
            return a | b if isinstance(a, frozenset) and isinstance(b, frozenset) \
                else (a if isinstance(a, str) else b)
        config = op.get("config") or {}
        if cls == "ConvertToTensor" and len(tensors) == 1 \
                and config.get("dtype") in (None, "bool") and not config.get("sparse") \
                and not config.get("ragged"):
            return self.form(tensors[0])
        if cls == "Any" and len(tensors) == 1 and config.get("axis") in (-1, [-1]) \
                and not config.get("keepdims"):
            inner = self.form(tensors[0])
            if isinstance(inner, frozenset) and len(inner) == 1 \
                    and next(iter(inner))[0] == "ne":
                _, tensor, value = next(iter(inner))
                return frozenset({("any_ne", tensor, value)})
        return f"made by Keras operation {cls} ('{key[0]}') in a way graphspec does not " \
               "reproduce"


def graphspec_form(model, tensor_name: str):
    """The form of the mask graphspec gives tensor ``tensor_name`` of ``model`` (None:
    no mask; a string: a mask whose steps cannot be named here)."""
    label = model.tensor(tensor_name).mask_source
    if label is None:
        return None
    terms = set()
    for part in label.split("+"):
        nodes = [n for n in model.nodes if n.layer.name == part]
        if len(nodes) != 1 or nodes[0].layer.TYPE not in ("Embedding", "Masking"):
            return f"the mask of '{part}', which is not one Embedding or Masking call"
        node = nodes[0]
        source = node.input_tensors[0].name
        if node.layer.TYPE == "Embedding":
            terms.add(("ne", source, 0.0))
        else:
            terms.add(("any_ne", source, float(node.layer.config["mask_value"])))
    return frozenset(terms)


def check_masks(graph, records: list, source: str) -> None:
    """Every recorded ``mask`` argument equals the mask graphspec propagates to that
    input. ``records``: ``(model, layer, input tensor names, [form or None per input],
    JSON path)``."""
    from ..errors import InputError
    for model_name, layer, inputs, forms, where in records:
        model = graph.models[model_name]
        for tensor, form in zip(inputs, forms):
            ours = graph_form = graphspec_form(model, tensor)
            if isinstance(form, str) or isinstance(graph_form, str) or form != ours:
                why = form if isinstance(form, str) else graph_form \
                    if isinstance(graph_form, str) else \
                    "graphspec gives this input no mask" if ours is None else \
                    "graphspec propagates another mask to this input"
                raise InputError(f"{source}: {where}.kwargs.mask: layer '{layer}' is "
                                 f"given a mask {why}; graphspec only uses the masks "
                                 "Embedding(mask_zero) and Masking make, propagated as "
                                 "Keras does, so the model is not imported")


def _keras_run_order(model) -> list:
    """``model.nodes`` in the order Keras' Functional runs them: by decreasing depth
    (the longest path to an output). Within one depth Keras' order follows its graph
    traversal; here the MultiHeadAttention calls come first, the rest in config order,
    so a mask they delete is taken as deleted for every layer of their depth (the
    check below may refuse a model Keras runs as graphspec does, never the reverse)."""
    depth, readers = {}, {}
    for node in model.nodes:
        for tensor in node.input_tensors:
            readers.setdefault(id(tensor), []).append(node)
    for node in reversed(model.nodes):
        depth[id(node)] = max((depth[id(r)] + 1 for t in node.output_tensors
                               for r in readers.get(id(t), ())), default=0)
    order = {id(n): i for i, n in enumerate(model.nodes)}
    return sorted(model.nodes, key=lambda n: (-depth[id(n)],
                                              n.layer.TYPE != "MultiHeadAttention",
                                              order[id(n)]))


# Keras layers whose call records the mask it gets (a ``mask`` argument); the others
# (MultiHeadAttention, Attention, AdditiveAttention) take it from the tensor at run time.
RECORDS_MASK = ("SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
                "GlobalAveragePooling1D", "Softmax", "BatchNormalization")


def run_time_mask_conflict(model, recorded) -> tuple | None:
    """Keras 3.15's MultiHeadAttention deletes the masks of the tensors it reads
    (``set_keras_mask(query, None)`` in its ``call``), so a layer that takes its mask at
    run time (none recorded in the config) and reads such a tensor after it sees no
    mask, and so do the layers after that one. graphspec propagates masks statically,
    as Keras does while building the model. ``(layer, tensor, attention layer)`` of the
    first layer using a mask where the two differ (then Keras computes other numbers),
    else None.
    ``recorded(node)``: whether Keras records that call's mask."""
    # tensor -> label at run time; -> the MultiHeadAttention that cleared its mask (or
    # one before it, for a tensor made from a cleared one)
    runtime, cleared, culprit = {}, {}, {}
    for node in _keras_run_order(model):
        layer = node.layer
        static = [t.mask_source for t in node.input_tensors]
        ins = static if recorded(node) else \
            [None if id(t) in cleared else runtime.get(id(t), t.mask_source)
             for t in node.input_tensors]
        differ = [t for t, a, b in zip(node.input_tensors, ins, static) if a != b]
        why = (cleared.get(id(differ[0])) or culprit.get(id(differ[0]))) if differ else None
        if getattr(layer, "USES_MASK", False) and differ:
            return layer.name, differ[0].name, why
        outs = call_mask_sources(layer, ins, len(node.output_tensors))
        for tensor, label in zip(node.output_tensors, outs):
            runtime[id(tensor)] = label
            if differ:
                culprit[id(tensor)] = why
        if layer.TYPE == "MultiHeadAttention":
            for tensor in node.input_tensors:
                cleared[id(tensor)] = layer.name
    return None


def conflict_message(conflict) -> str:
    layer, tensor, attention = conflict
    return (f"layer '{layer}' runs without the mask of '{tensor}' in Keras 3.15 but with "
            f"it in graphspec: Keras' MultiHeadAttention '{attention}' deletes the masks "
            "of the tensors it reads, and layers reading them after it (at run time) lose "
            "the mask Keras recorded when it built the model, which graphspec uses; the "
            "two would compute different numbers")


def check_run_time_masks(graph, records: list, source: str) -> None:
    """Refuse an imported model where Keras' run-time masks differ from graphspec's."""
    from ..errors import InputError
    calls = {(model, layer) for model, layer, *_ in records}
    for model in graph.models.values():
        conflict = run_time_mask_conflict(
            model, lambda node, m=model.name: (m, node.layer.name) in calls)
        if conflict:
            raise InputError(f"{source}: {conflict_message(conflict)}, so the model is "
                             "not imported")
