"""Keras 3 ``config.json`` (+ ``model.weights.h5``) -> a graphspec spec and its weights.

The config is walked as data. A Functional model's ``layers`` become declared layers (or
sub-models, for nested Functional/Sequential models); each entry of a layer's
``inbound_nodes`` becomes one call, so a shared layer keeps one instance with its nodes
0, 1, 2... in Keras' order, and ``inspect-nodes`` shows the nodes Keras has. Calls are
emitted in the order Keras' own ``functional_from_config`` processes them (layers in
config order, a node deferred until its inputs exist), which keeps node indices equal.

Layer names survive (characters a spec name cannot hold become ``_``); tensors get
names from the layer that makes them: ``dense`` (one node, one output), ``dense__1``
(node 1), ``lstm__0_2`` (node 0, output 2).

Weights are read from ``layers/<group>/.../vars/<i>`` where ``<group>`` is the class
name in snake case with Keras' counter (``dense``, ``dense_1``), in config order; the
layer name Keras records on each group is checked against the config.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..initializers import INITIALIZERS as GS_INITIALIZERS
from ..layers.registry import REGISTRY
from .keras_archive import open_keras
from .keras_layers import (CONVERTERS, INITIALIZERS, KERAS_MODULES, KERAS_REFUSED,
                           MODEL_CLASSES, _IGNORED, _INIT_IGNORED, unique_group_names)
from .keras_spec import check_spec, spec_yaml

MAX_MODEL_DEPTH = 32
INPUT_DTYPES = ("float32", "float64", "int32", "int64")
_TUPLE_ARGS = ("kernel_size", "strides", "pool_size", "dilation_rate")


@dataclass
class KerasImport:
    """The result: spec data, its YAML text, weights keyed ``layer/weight`` (None for a
    bare config.json) and the Keras names that had to change."""
    spec: dict
    text: str
    weights: dict | None
    renamed: dict


def import_keras(path) -> KerasImport:
    """Convert the Keras model at ``path`` (``.keras`` or ``config.json``); refuse, with
    the file and JSON path, anything graphspec cannot express exactly."""
    with open_keras(path) as archive:
        importer = _Importer(archive)
        top = importer.model(archive.config, "", "", 0)
    spec = {"graphspec": 1,
            "description": f"Keras model '{top}' imported by graphspec import-keras",
            "layers": importer.layers, "models": importer.models}
    if not importer.layers:
        del spec["layers"]
    text = spec_yaml(spec, archive.file)
    weights = importer.weights if archive.weights is not None else None
    check_spec(text, archive.file, weights)
    return KerasImport(spec, text, weights, importer.renamed)


def _triples(value, where):
    """``input_layers``/``output_layers``: one [name, node, tensor] or a list/dict of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        raise InputError(f"{where}: expected [layer, node, tensor] entries")
    out = []
    for item in value:
        out.extend(_triples(item, where))
    return out


class _Importer:
    def __init__(self, archive):
        self.file, self.h5 = archive.file, archive.weights
        self.layers, self.models, self.weights = {}, {}, {}
        self.renamed, self._used = {}, set()

    # -- errors and names ---------------------------------------------------------------
    def fail(self, where, message):
        raise InputError(f"{self.file}: {where or 'top level'}: {message}")

    def claim(self, keras_name, where) -> str:
        """A spec name for a layer or model: the Keras name where it is a valid, unused
        spec name, else the closest one that is."""
        if not isinstance(keras_name, str) or not keras_name:
            self.fail(where, "a layer without a name")
        name = re.sub(r"[^A-Za-z0-9_]", "_", keras_name)[:120]
        if not re.match(r"[A-Za-z_]", name):
            name = "_" + name
        base, n = name, 1
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._used.add(name)
        if name != keras_name:
            self.renamed[keras_name] = name
        return name

    def check_object(self, obj, where) -> str:
        """The class name of a serialized Keras object; custom objects refused."""
        if not isinstance(obj, dict) or not isinstance(obj.get("class_name"), str) \
                or not isinstance(obj.get("config"), dict):
            self.fail(where, "expected a serialized Keras layer {class_name, config}")
        cls = obj["class_name"]
        module, registered = obj.get("module"), obj.get("registered_name")
        name = obj["config"].get("name", "?")
        if module not in KERAS_MODULES or registered not in (None, cls):
            self.fail(where, f"{cls} '{name}' is a custom object (module {module!r}, "
                             f"registered_name {registered!r}); graphspec never imports "
                             "Python named in a file: rewrite it as a graphspec expression "
                             "(type: Lambda / Merge) or a built-in layer")
        if cls in KERAS_REFUSED:
            self.fail(where, f"{cls} layer '{name}': {KERAS_REFUSED[cls]}")
        if cls not in CONVERTERS and cls not in MODEL_CLASSES and cls != "InputLayer":
            self.fail(where, f"Keras layer class {cls} ('{name}') has no graphspec "
                             f"converter; supported: {', '.join(sorted(CONVERTERS))}. "
                             "Rewrite it as a graphspec expression (Lambda / Merge) or "
                             "built-in layers")
        return cls

    # -- models ---------------------------------------------------------------------------
    def model(self, obj, where, h5path, depth) -> str:
        cls = self.check_object(obj, where)
        if cls not in MODEL_CLASSES:
            self.fail(where, f"expected a Functional or Sequential model, got {cls}")
        if depth > MAX_MODEL_DEPTH:
            self.fail(where, f"models nested deeper than {MAX_MODEL_DEPTH}")
        config = obj["config"]
        name = self.claim(config.get("name"), where)
        layers = config.get("layers")
        if not isinstance(layers, list) or not layers:
            self.fail(_at(where) + ".layers", "a model needs a non-empty layer list")
        self.check_h5_name(h5path, config.get("name"), where)
        build = _Model(self, name, where, h5path, depth)
        if cls == "Sequential":
            spec = build.sequential(layers, config.get("build_input_shape"))
        else:
            spec = build.functional(layers, config)
        if config.get("trainable") is False:
            spec = {"trainable": False, **spec}
        self.models[name] = spec
        return name

    def output_count(self, ref) -> int:
        if isinstance(ref, str):
            return len(self.models[ref]["outputs"])
        cls = REGISTRY[ref["type"]]
        config = cls.with_defaults({k: v for k, v in ref.items()
                                    if k not in ("type", "name", "trainable")})
        if ref["type"] == "TimeDistributed":
            return self.output_count(config["layer"])
        if ref["type"] == "Bidirectional":
            inner = REGISTRY[config["layer"]["type"]].with_defaults(config["layer"])
            states = 2 * REGISTRY[inner["type"]].STATES if inner["return_state"] else 0
            return (2 if config["merge_mode"] is None else 1) + states
        if hasattr(cls, "STATES") and config.get("return_state"):
            return 1 + cls.STATES
        return 1

    def check_h5_name(self, h5path, keras_name, where):
        if self.h5 is None:
            return
        recorded = self.h5.name_of(h5path)
        if recorded is not None and recorded != keras_name:
            self.fail(where, f"model.weights.h5 group '{h5path or '/'}' holds the weights "
                             f"of '{recorded}', but config.json has '{keras_name}' here: "
                             "the weights do not belong to this config")

    # -- layers ---------------------------------------------------------------------------
    def layer(self, obj, where, h5path, depth):
        """(spec name or model name, spec layer dict or None) of one Keras layer."""
        cls = self.check_object(obj, where)
        if cls in MODEL_CLASSES:
            return self.model(obj, where, h5path, depth + 1), None
        config = obj["config"]
        self.check_h5_name(h5path, config.get("name"), where)
        name = self.claim(config.get("name"), where)
        spec = {"type": cls, "name": name}
        if config.get("trainable") is False:
            spec["trainable"] = False
        spec.update(self.args(cls, config, where))
        if cls == "TimeDistributed":
            inner, inner_spec = self.layer(config.get("layer"), _at(where) + ".layer",
                                           h5path + "/layer", depth)
            spec["layer"] = inner if inner_spec is None else inner_spec
        elif cls == "Bidirectional":
            spec["layer"] = self.bidirectional(config, where, h5path)
        else:
            self.read_vars(h5path, CONVERTERS[cls], name, config, where)
        return name, spec

    def bidirectional(self, config, where, h5path) -> dict:
        inner = config.get("layer")
        cls = self.check_object(inner, _at(where) + ".layer")
        if cls not in ("SimpleRNN", "LSTM", "GRU"):
            self.fail(_at(where) + ".layer", f"Bidirectional wraps {cls}; graphspec "
                                               "wraps SimpleRNN, LSTM or GRU")
        forward = inner["config"]
        backward = config.get("backward_layer")
        if backward is not None:
            self.check_object(backward, _at(where) + ".backward_layer")
            same = {k: v for k, v in forward.items() if k not in ("name", "go_backwards")}
            other = {k: v for k, v in backward["config"].items()
                     if k not in ("name", "go_backwards")}
            if backward["class_name"] != cls or _plain(same) != _plain(other) \
                    or backward["config"].get("go_backwards") == forward.get("go_backwards"):
                self.fail(_at(where) + ".backward_layer",
                          "a backward layer that is not the forward layer run backwards; "
                          "graphspec's Bidirectional always mirrors the forward layer")
        keras_name = forward.get("name", "")
        name = self.claim(keras_name[len("forward_"):] if keras_name.startswith("forward_")
                          else keras_name, _at(where) + ".layer")
        spec = {"type": cls, "name": name, **self.args(cls, forward, _at(where) + ".layer")}
        converter = CONVERTERS[cls]
        self.read_vars(h5path + "/forward_layer", converter, name, forward, where)
        self._used.add("backward_" + name)
        self.read_vars(h5path + "/backward_layer", converter, "backward_" + name, forward,
                       where)
        return spec

    def read_vars(self, h5path, converter, name, config, where):
        if self.h5 is None:
            return
        names = converter.weight_names(config)
        path = h5path + ("/" + converter.sub_path if converter.sub_path else "")
        arrays = self.h5.vars(path)
        if len(arrays) != len(names):
            self.fail(where, f"model.weights.h5 has {len(arrays)} variable(s) for layer "
                             f"'{name}' at '{path}/vars', graphspec's {converter.type} "
                             f"needs {len(names)} ({', '.join(names) or 'none'})")
        for weight, array in zip(names, arrays):
            self.weights[f"{name}/{weight}"] = array

    # -- arguments ------------------------------------------------------------------------
    def args(self, cls, config, where) -> dict:
        schema, converter = REGISTRY[cls].ARGS, CONVERTERS[cls]
        wraps = getattr(REGISTRY[cls], "WRAPS", ())
        out = {}
        for key, value in config.items():
            at = f"{_at(where)}.{key}"
            if key in ("name", "trainable") or key in wraps or key in _IGNORED or \
                    (cls == "Bidirectional" and key == "backward_layer"):
                continue
            if key == "dtype":
                self.check_dtype(value, at)
            elif key in schema:
                value = self.value(key, value, at)
                if "default" not in schema[key] or value != schema[key]["default"]:
                    out[key] = value
            elif key in converter.keras_only:
                if _plain(value) != converter.keras_only[key]:
                    self.fail(at, f"{cls} argument {key}={value!r} is not supported by "
                                  f"graphspec (only {converter.keras_only[key]!r})")
            else:
                self.fail(at, f"{cls} argument '{key}' has no graphspec equivalent")
        if cls == "Embedding" and out.get("mask_zero"):
            self.fail(_at(where) + ".mask_zero", "mask_zero=True: graphspec does not "
                      "propagate masks, so the model would compute something else")
        return out

    def check_dtype(self, value, where):
        if isinstance(value, dict):
            value = value.get("config", {}).get("name") \
                if value.get("class_name") == "DTypePolicy" else value.get("class_name")
        if value not in (None, "float32"):
            self.fail(where, f"dtype policy {value!r}: graphspec imports float32 models")

    def value(self, key, value, where):
        if key.endswith("_initializer"):
            return self.initializer(value, where)
        if key.endswith("_regularizer"):
            return self.regularizer(value, where)
        if key in ("activation", "recurrent_activation") and not isinstance(value, str):
            self.fail(where, "a custom activation; use a Keras activation name")
        if key in _TUPLE_ARGS and isinstance(value, list) and value \
                and all(v == value[0] for v in value):
            return value[0]
        return value

    def initializer(self, value, where):
        if isinstance(value, str) and value in GS_INITIALIZERS:
            return value
        if isinstance(value, dict) and value.get("class_name") in INITIALIZERS:
            name, defaults = INITIALIZERS[value["class_name"]]
            config = {k: v for k, v in (value.get("config") or {}).items()
                      if k not in _INIT_IGNORED}
            if all(config.get(k, d) == d for k, d in defaults.items()) \
                    and set(config) <= set(defaults):
                return name
        self.fail(where, f"initializer {_plain(value)!r} is not one graphspec has "
                         f"({', '.join(sorted(GS_INITIALIZERS))}, Keras default arguments)")

    def regularizer(self, value, where):
        if value is None:
            return None
        if isinstance(value, dict) and value.get("class_name") in ("L1", "L2", "L1L2"):
            config = value.get("config") or {}
            keys = {"L1": ("l1",), "L2": ("l2",), "L1L2": ("l1", "l2")}[value["class_name"]]
            if set(config) <= set(keys) and all(isinstance(config.get(k, 0.0), (int, float))
                                                for k in keys):
                return {k: float(config.get(k, 0.0)) for k in keys}
        self.fail(where, f"regularizer {_plain(value)!r}: graphspec has L1, L2 and L1L2")


def _at(where: str) -> str:
    """The JSON path of an object's ``config`` (the file's top object is ``config``)."""
    return f"{where}.config" if where else "config"


def _plain(value):
    """JSON data without Keras' bookkeeping (shared_object_id), for comparisons."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _Model:
    """One Keras model's layers and nodes -> one spec model (inputs, calls, outputs)."""

    def __init__(self, importer, name, where, h5path, depth):
        self.imp, self.name, self.where, self.h5path, self.depth = \
            importer, name, where, h5path, depth
        self.entries = {}         # keras layer name -> (ref, node count)
        self.tensors = {}         # (keras layer, node, tensor) -> spec tensor name
        self.tensor_names = set()
        self.inputs, self.calls = {}, []

    def _tensor(self, key, name):
        base, n = name, 1
        while name in self.tensor_names:
            n += 1
            name = f"{base}_{n}"
        self.tensor_names.add(name)
        self.tensors[key] = name
        return name

    def _input(self, obj, where):
        config = obj["config"]
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if not isinstance(shape, list) or len(shape) < 2:
            self.imp.fail(where, "an input needs a batch_shape with at least one feature "
                                 "axis")
        if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape[1:]):
            self.imp.fail(where, f"input shape {shape} has a dimension graphspec cannot "
                                 "hold (positive integers or null)")
        dtype = config.get("dtype", "float32")
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name")
        if dtype not in INPUT_DTYPES:
            self.imp.fail(where, f"input dtype {dtype!r}: graphspec inputs are "
                                 f"{', '.join(INPUT_DTYPES)}")
        if config.get("sparse") or config.get("ragged"):
            self.imp.fail(where, "sparse and ragged inputs are not supported")
        spec = {"shape": list(shape[1:])}
        if dtype != "float32":
            spec["dtype"] = dtype
        return spec

    def functional(self, layers, config) -> dict:
        groups = unique_group_names([l.get("class_name") if isinstance(l, dict) else ""
                                     for l in layers])
        pending, order, declared_inputs = {}, [], {}
        for i, obj in enumerate(layers):
            where = f"{_at(self.where)}.layers[{i}]"
            cls = self.imp.check_object(obj, where)
            keras_name = obj.get("name") or obj["config"].get("name")
            if keras_name in self.entries:
                self.imp.fail(where, f"two layers named '{keras_name}' in one model")
            h5 = f"{self.h5path}/layers/{groups[i]}".lstrip("/")
            if cls == "InputLayer":
                self.imp.check_h5_name(h5, keras_name, where)
                declared_inputs[keras_name] = (self._input(obj, where), where)
                self.entries[keras_name] = ("input", 1, cls)
                continue
            ref, spec = self.imp.layer(obj, where, h5, self.depth)
            if spec is not None:
                self.imp.layers[ref] = {k: v for k, v in spec.items() if k != "name"}
                ref = {"ref": ref, "spec": spec}
            nodes = obj.get("inbound_nodes")
            if not isinstance(nodes, list):
                self.imp.fail(where + ".inbound_nodes", "expected a list of nodes")
            self.entries[keras_name] = (ref, len(nodes), cls)
            pending[keras_name] = [(n, data, f"{where}.inbound_nodes[{n}]")
                                   for n, data in enumerate(nodes)]
            order.append(keras_name)
        where = f"{_at(self.where)}.input_layers"
        for layer, node, tensor in _triples(config.get("input_layers"), where):
            if layer not in declared_inputs or (node, tensor) != (0, 0):
                self.imp.fail(where, f"model input {[layer, node, tensor]} is not an "
                                     "InputLayer of this model")
            name = self._tensor((layer, 0, 0), re.sub(r"\W", "_", layer))
            self.inputs[name] = declared_inputs[layer][0]
        self._emit_calls(pending, order)
        outputs = []
        where = f"{_at(self.where)}.output_layers"
        for layer, node, tensor in _triples(config.get("output_layers"), where):
            if self.entries.get(layer, (None,) * 3)[2] in ("Functional", "Model"):
                node -= 1   # Keras numbers a nested Functional's nodes from 1 here
            if (layer, node, tensor) not in self.tensors:
                self.imp.fail(where, f"output {[layer, node, tensor]} is not a tensor of "
                                     "this model")
            outputs.append(self.tensors[(layer, node, tensor)])
        return {"inputs": self.inputs, "calls": self.calls, "outputs": outputs}

    def _emit_calls(self, pending, order):
        """Calls in the order ``functional_from_config`` makes them (node indices kept)."""
        while pending:
            progress = False
            for keras_name in order:
                queue = pending.get(keras_name)
                while queue:
                    inputs = self._node_inputs(*queue[0][1:])
                    if inputs is None:
                        break
                    self._call(keras_name, queue.pop(0)[0], inputs)
                    progress = True
                if queue == []:
                    del pending[keras_name]
            if not progress:
                first = next(iter(pending.values()))[0]
                self.imp.fail(first[2], "this node's inputs are never produced (a cycle, "
                                        "or a reference to a missing layer or node)")

    def _node_inputs(self, data, where):
        """Spec tensor names a node reads, or None if one is not produced yet."""
        if not isinstance(data, dict) or not isinstance(data.get("args"), list):
            self.imp.fail(where, "expected a node {args, kwargs} (Keras 3 format)")
        for key, value in (data.get("kwargs") or {}).items():
            if value not in (None, False) and not (key == "training" and value is None):
                self.imp.fail(f"{where}.kwargs.{key}", f"call argument {key}={value!r} "
                              "is not supported (graphspec calls layers on tensors only)")
        leaves = []

        def flatten(value, at):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    flatten(item, f"{at}[{i}]")
            elif isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                history = (value.get("config") or {}).get("keras_history")
                if not (isinstance(history, list) and len(history) == 3):
                    self.imp.fail(at, "a tensor without keras_history")
                leaves.append((tuple(history), at))
            else:
                self.imp.fail(at, "a call argument that is not a tensor")
        flatten(data["args"], where + ".args")
        if not leaves:
            self.imp.fail(where, "a call with no input tensor")
        names = []
        for key, at in leaves:
            if key[0] not in self.entries:
                self.imp.fail(at, f"refers to unknown layer '{key[0]}'")
            if key not in self.tensors:
                return None
            names.append(self.tensors[key])
        return names

    def _call(self, keras_name, node, inputs):
        ref, node_count, _ = self.entries[keras_name]
        spec_ref = ref if isinstance(ref, str) else ref["ref"]
        count = self.imp.output_count(ref if isinstance(ref, str) else ref["spec"])
        outs = []
        for i in range(count):
            base = spec_ref if node_count == 1 and count == 1 else \
                f"{spec_ref}__{node}" if count == 1 else f"{spec_ref}__{node}_{i}"
            outs.append(self._tensor((keras_name, node, i), base))
        self.calls.append({"layer": spec_ref, "in": inputs[0] if len(inputs) == 1 else inputs,
                           "out": outs[0] if count == 1 else outs})

    def sequential(self, layers, build_shape) -> dict:
        first = layers[0] if isinstance(layers[0], dict) else {}
        if first.get("class_name") == "InputLayer":
            self.imp.check_object(first, f"{_at(self.where)}.layers[0]")
            name = re.sub(r"\W", "_", first["config"].get("name") or "input")
            self.inputs[name] = self._input(first, f"{_at(self.where)}.layers[0]")
            layers, offset = layers[1:], 1
        elif isinstance(build_shape, list):
            name = f"{self.name}_input"
            self.inputs[name] = self._input({"config": {"batch_shape": build_shape}},
                                            f"{_at(self.where)}.build_input_shape")
            offset = 0
        else:
            self.imp.fail(self.where, "a Sequential model without an input shape: build it "
                                      "(keras.Input first) before saving")
        self.tensor_names.add(name)
        groups = unique_group_names([l.get("class_name") if isinstance(l, dict) else ""
                                     for l in layers])
        current = name
        for i, obj in enumerate(layers):
            where = f"{_at(self.where)}.layers[{i + offset}]"
            ref, spec = self.imp.layer(obj, where, f"{self.h5path}/layers/{groups[i]}"
                                       .lstrip("/"), self.depth)
            if spec is not None:
                self.imp.layers[ref] = {k: v for k, v in spec.items() if k != "name"}
            if self.imp.output_count(ref if spec is None else spec) != 1:
                self.imp.fail(where, "a layer with several outputs inside a Sequential")
            self.entries[ref] = (ref, 1, obj.get("class_name"))
            current = self._tensor((ref, 0, 0), ref)
            self.calls.append({"layer": ref, "in": self.calls[-1]["out"] if self.calls
                               else name, "out": current})
        return {"inputs": self.inputs, "calls": self.calls, "outputs": [current]}


def weights_as_float32(weights: dict) -> dict:
    return {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
