"""A compiled graphspec model -> a Keras 3 ``.keras`` file (config.json, metadata.json,
model.weights.h5) that ``keras.saving.load_model`` loads and runs to the same numbers.

Each graphspec model becomes a Functional model: the chosen one at the top, the models
it calls (directly or through TimeDistributed) nested inside it. A layer's nodes in the
model become its ``inbound_nodes``, numbered among that model's nodes as Keras numbers
them. Nodes the outputs do not depend on are left out, as Keras itself leaves them out.

Keras finds weights by position, not by name: ``layers/<group>`` where ``<group>`` is
the class name in snake case with a counter, in the order of the loaded model's
``layers``. That order is Keras' ``map_graph`` (operations by decreasing depth, ties in
traversal order), reproduced by :func:`keras_order`; config.json lists the layers in the
same order so the file reads the way Keras would have written it.
"""
from __future__ import annotations

import datetime
import io
import json
import zipfile

import numpy as np

from ..errors import InputError
from ..graph.model import Model
from ..io.files import atomic_write
from .keras_archive import CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER, h5py_module
from .keras_layers import CONVERTERS, REFUSED, unique_group_names
from .keras_masks import RECORDS_MASK, conflict_message, run_time_mask_conflict
from .targets import export_targets

# The Keras release whose format this writer follows (and the tests load with).
KERAS_FORMAT_VERSION = "3.15.1"
# graphspec-only arguments and the value under which Keras computes the same thing.
GRAPHSPEC_ONLY = {"Activation": {"axis": -1}}
_INPUT = "InputLayer"


def export_keras(graph, path, model: str | None = None, batch_size: int | None = None) \
        -> list:
    """Write ``graph.models[model]`` to ``path`` as ``.keras``; without ``model``, every
    model of the graph, one file each (``out.MODEL.keras``) when there are several, as
    ONNX export does. Everything is checked before anything is written: a layer type
    Keras cannot express is refused by name. ``batch_size``: written into the inputs'
    ``batch_shape`` (Keras needs it for stateful recurrent layers).
    Returns ``[(model name, path written)]``.
    """
    targets = export_targets(graph, path, model, ".keras")
    for each, _ in targets:
        check_exportable(each, batch_size)
    if not graph.weights() and graph.weight_specs():
        raise InputError("the graph has no weights yet: load or initialise them first")
    files = [(each, _file(each, batch_size), target) for each, target in targets]
    for each, data, target in files:
        with atomic_write(target) as handle:
            handle.write(data)
    return [(each.name, target) for each, _, target in files]


def _file(model, batch_size=None) -> bytes:
    """The bytes of one ``.keras`` zip: config.json, metadata.json, model.weights.h5."""
    writer = _Writer(batch_size)
    config = writer.model_object(model)
    h5_bytes = writer.weights_file(model)
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "producer": "graphspec",
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(METADATA_MEMBER, json.dumps(metadata))
        archive.writestr(CONFIG_MEMBER, json.dumps(config))
        archive.writestr(WEIGHTS_MEMBER, h5_bytes)
    return buffer.getvalue()


def check_exportable(model, batch_size: int | None = None) -> None:
    """Refuse, naming the layer, anything Keras cannot run as graphspec does (every
    layer of the model, those of its sub-models and wrapped layers included)."""
    for layer in model.layers():
        kind = layer.TYPE
        if kind in REFUSED:
            raise InputError(f"{kind} layer '{layer.name}' cannot be exported to Keras: it "
                             f"is {REFUSED[kind]}")
        if kind not in CONVERTERS:
            raise InputError(f"{kind} layer '{layer.name}' has no Keras converter")
        for arg, value in GRAPHSPEC_ONLY.get(kind, {}).items():
            if layer.config.get(arg) != value:
                raise InputError(f"{kind} layer '{layer.name}': {arg}={layer.config[arg]!r} "
                                 f"has no Keras equivalent (Keras uses {value!r})")
        if layer.config.get("stateful") and batch_size is None:
            raise InputError(f"{kind} layer '{layer.name}' is stateful: Keras needs the "
                             "batch size fixed in the model's inputs (batch_shape); give "
                             "it: graphspec export --format keras --batch-size N "
                             "(export_keras(..., batch_size=N))")
    for each in _models(model):
        conflict = run_time_mask_conflict(each, lambda n: n.layer.TYPE in RECORDS_MASK)
        if conflict:
            raise InputError(f"model '{each.name}' cannot be exported to Keras: "
                             f"{conflict_message(conflict)}")


def _models(model, seen=None) -> list:
    """``model`` and every model it calls (directly or through TimeDistributed), once."""
    seen = set() if seen is None else seen
    if id(model) in seen:
        return []
    seen.add(id(model))
    out = [model]
    for node in model.nodes:
        inner = getattr(node.layer, "inner", None) \
            if node.layer.TYPE == "TimeDistributed" else node.layer
        if isinstance(inner, Model):
            out += _models(inner, seen)
    return out


# -- Keras' order of a model's layers (ops/function.py map_graph) --------------------------
def _producer(tensor, inputs):
    """(operation, node) that makes ``tensor``: an input is its own InputLayer."""
    if tensor.history is None:
        return ("input", tensor.name), ("input", tensor.name)
    node = tensor.history.layer.inbound_nodes[tensor.history.node_index]
    return tensor.history.layer, node


def keras_order(model) -> tuple:
    """(operations in Keras' ``layers`` order, the nodes Keras keeps in the model)."""
    finished, ordered, indices = set(), [], {}

    def visit(tensor):
        op, node = _producer(tensor, model.inputs)
        key = _key(node)
        if key in finished:
            return
        indices.setdefault(_key(op), len(indices))
        if not isinstance(node, tuple):
            for parent in node.input_tensors:
                visit(parent)
        finished.add(key)
        ordered.append((op, node))
    for tensor in model.outputs:
        visit(tensor)
    node_depth, op_depth, ops = {}, {}, {}
    for op, node in reversed(ordered):
        depth = max(node_depth.setdefault(_key(node), 0), op_depth.get(_key(op), 0))
        op_depth[_key(op)] = depth
        ops[_key(op)] = op
        node_depth[_key(node)] = depth
        if not isinstance(node, tuple):
            for parent in node.input_tensors:
                pkey = _key(_producer(parent, model.inputs)[1])
                node_depth[pkey] = max(depth + 1, node_depth.get(pkey, 0))
    for tensor in model.inputs:             # inputs the outputs do not use
        op = ("input", tensor.name)
        if _key(op) not in op_depth:
            op_depth[_key(op)], indices[_key(op)], ops[_key(op)] = 0, -1, op
    by_depth = sorted(op_depth, key=lambda k: (-op_depth[k], indices[k]))
    kept = {_key(node) for _, node in ordered}
    return [ops[k] for k in by_depth], kept


def _key(item):
    return item if isinstance(item, tuple) else id(item)


class _Writer:
    def __init__(self, batch_size=None):
        self.depth, self.batch_size = 0, batch_size

    # -- config.json --------------------------------------------------------------------
    def model_object(self, model) -> dict:
        ops, kept = keras_order(model)
        names = [op[1] if isinstance(op, tuple) else op.name for op in ops]
        clash = {n for n in names if names.count(n) > 1}
        if clash:
            raise InputError(f"model '{model.name}': the name '{sorted(clash)[0]}' is both "
                             "an input and a layer; Keras needs unique names in a model")
        layers = [self._input_object(model, op[1]) if isinstance(op, tuple)
                  else self._called_object(op, model, kept) for op in ops]
        ins = [[t.name, 0, 0] for t in model.inputs]
        outs = [self._history(t, model, kept, output=True) for t in model.outputs]
        return {"module": "keras.src.models.functional", "class_name": "Functional",
                "config": {"name": model.name, "trainable": bool(model.trainable),
                           "layers": layers,
                           "input_layers": ins[0] if len(ins) == 1 else ins,
                           "output_layers": outs[0] if len(outs) == 1 else outs},
                "registered_name": "Functional", "build_config": {"input_shape": None},
                "compile_config": None}

    def _input_object(self, model, name) -> dict:
        tensor = next(t for t in model.inputs if t.name == name)
        shape = [self.batch_size] + list(tensor.shape[1:])
        return {"module": "keras.layers", "class_name": _INPUT,
                "config": {"batch_shape": shape, "dtype": tensor.dtype,
                           "sparse": False, "ragged": False, "name": name},
                "registered_name": None, "name": name, "inbound_nodes": []}

    def _called_object(self, op, model, kept) -> dict:
        obj = self.model_object(op) if isinstance(op, Model) else self.layer_object(op)
        nodes = [n for n in op.inbound_nodes if n.model == model.name and id(n) in kept]
        obj["name"] = op.name
        obj["inbound_nodes"] = [self._node(n, model, kept) for n in nodes]
        return obj

    def _node(self, node, model, kept) -> dict:
        tensors = [{"class_name": "__keras_tensor__",
                    "config": {"shape": list(t.shape), "dtype": t.dtype,
                               "keras_history": self._history(t, model, kept)}}
                   for t in node.input_tensors]
        layer = node.layer
        if isinstance(layer, Model):
            return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": {}}
        converter = CONVERTERS[layer.TYPE]
        kwargs = {key: bool(layer.config[key]) for key in converter.call_args
                  if key not in converter.call_tensors}
        if not converter.positional:
            return {"args": [tensors[0] if len(tensors) == 1 else tensors],
                    "kwargs": kwargs}
        args, rest = tensors[:converter.positional], tensors[converter.positional:]
        # further inputs are call keywords: the flagged ones (the mask) last, the
        # others (the key) in order before them, as many as there are inputs
        flagged = [k for k in converter.call_tensors
                   if k in converter.call_args and layer.config[k]]
        others = [k for k in converter.call_tensors if k not in converter.call_args]
        kwargs.update(zip(others[:len(rest) - len(flagged)] + flagged, rest))
        return {"args": args, "kwargs": kwargs}

    @staticmethod
    def _history(tensor, model, kept, output=False) -> list:
        if tensor.history is None:
            return [tensor.name, 0, 0]
        layer, index = tensor.history.layer, tensor.history.node_index
        position = sum(1 for n in layer.inbound_nodes[:index]
                       if n.model == model.name and id(n) in kept)
        # output_layers count a nested Functional's nodes from 1 (functional.py)
        if output and isinstance(layer, Model):
            position += 1
        return [layer.name, position, tensor.history.tensor_index]

    def layer_object(self, layer) -> dict:
        # trainable only where it says something: a few Keras classes without
        # weights (SpatialDropout1D) do not accept the argument at all
        config = {"name": layer.name, "dtype": "float32"}
        if not layer.trainable and (layer.weight_shapes or layer.sublayers()):
            config["trainable"] = False
        skip = set(GRAPHSPEC_ONLY.get(layer.TYPE, {})) | set(CONVERTERS[layer.TYPE].call_args)
        for key, value in keras_config(layer).items():
            if key in skip:
                continue
            if key == "layer":
                inner = value
                value = self.model_object(inner) if isinstance(inner, Model) \
                    else self.layer_object(inner)
            elif key == "backward_layer":
                value = None if value is None else self.layer_object(layer.backward_layer)
            elif key.endswith("_regularizer"):
                value = _regularizer(value)
            config[key] = value
        return {"module": "keras.layers", "class_name": layer.TYPE, "config": config,
                "registered_name": None}

    # -- model.weights.h5 ----------------------------------------------------------------
    def weights_file(self, model) -> bytes:
        h5py = h5py_module("graphspec export --format keras")
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as h5:
            self._model_weights(h5, "", model)
        return buffer.getvalue()

    def _model_weights(self, h5, path, model):
        _vars_group(h5, path, model.name)
        ops, _ = keras_order(model)
        classes = [_INPUT if isinstance(op, tuple) else
                   "Functional" if isinstance(op, Model) else op.TYPE for op in ops]
        for op, group in zip(ops, unique_group_names(classes)):
            where = f"{path}/layers/{group}".lstrip("/")
            if isinstance(op, tuple):
                _vars_group(h5, where, op[1])
            else:
                self._layer_weights(h5, where, op)

    def _layer_weights(self, h5, path, layer):
        if isinstance(layer, Model):
            self._model_weights(h5, path, layer)
            return
        _vars_group(h5, path, layer.name)
        if layer.TYPE == "TimeDistributed":
            self._layer_weights(h5, path + "/layer", layer.inner)
        elif layer.TYPE == "Bidirectional":
            for side, inner in (("forward_layer", layer.forward_layer),
                                ("backward_layer", layer.backward_layer)):
                _vars_group(h5, f"{path}/{side}", inner.name)
                self._write_vars(h5, f"{path}/{side}", inner)
        else:
            self._write_vars(h5, path, layer)

    @staticmethod
    def _write_vars(h5, path, layer):
        converter = CONVERTERS[layer.TYPE]
        for sub_path, names in converter.var_groups(keras_config(layer)):
            where = f"{path}/{sub_path}" if sub_path else path
            if sub_path:
                _vars_group(h5, where, f"{layer.name}_{sub_path}")
            group = h5.require_group(f"{where}/vars") if where else h5.require_group("vars")
            for i, name in enumerate(names):
                group[str(i)] = np.zeros((), np.int64) if name is None else \
                    np.asarray(layer.weights[name].data, dtype=np.float32)


def keras_config(layer) -> dict:
    """The layer's arguments as Keras should see them. Normalization's statistics go
    as variables (they may have been adapted since the spec gave them)."""
    if layer.TYPE == "Normalization":
        return dict(layer.config, mean=None, variance=None)
    return layer.config


def _vars_group(h5, path, name):
    group = h5.require_group(f"{path}/vars" if path else "vars")
    group.attrs["name"] = name
    return group


def _regularizer(value):
    if not value:
        return None
    cls = "L1L2" if len(value) == 2 else "L1" if "l1" in value else "L2"
    return {"module": "keras.regularizers", "class_name": cls,
            "config": {k: float(v) for k, v in value.items()}, "registered_name": None}
