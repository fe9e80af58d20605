"""One Keras model's layers and nodes -> one spec model (inputs, calls, outputs).

Calls are emitted in the order Keras' own ``functional_from_config`` makes them: layers
in config order, each layer's nodes in order, a node deferred until every tensor it
reads exists. A layer's node ``i`` in the file is therefore node ``i`` in graphspec.
Tensors are named after the layer that makes them: ``dense`` (one node, one output),
``dense__1`` (node 1), ``lstm__0_2`` (node 0, output 2).
"""
from __future__ import annotations

import re
from collections import deque

from ..errors import InputError
from .keras_layers import CONVERTERS, OP_PREFIX, group_class, unique_group_names
from .keras_masks import MaskForms, mask_only_operations

INPUT_DTYPES = ("float32", "float64", "int32", "int64")


def spec_name(text: str) -> str:
    """``text`` as a spec name: characters outside [A-Za-z0-9_] become ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)[:120]
    return name if re.match(r"[A-Za-z_]", name) else "_" + name


def at(where: str) -> str:
    """The JSON path of an object's ``config`` (the file's top object is ``config``)."""
    return f"{where}.config" if where else "config"


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


class ModelBuilder:
    """One Keras model's layers and nodes -> one spec model (inputs, calls, outputs)."""

    def __init__(self, importer, name, where, h5path, depth):
        self.imp, self.name, self.where, self.h5path, self.depth = \
            importer, name, where, h5path, depth
        self.entries = {}         # keras layer name -> (ref, node count)
        self.tensors = {}         # (keras layer, node, tensor) -> spec tensor name
        self.tensor_names = set()
        self.inputs, self.calls = {}, []
        self.mask_ops = {}        # keras name -> a mask operation (not imported)

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
        groups = unique_group_names([group_class(l) for l in layers])
        pending, order, declared_inputs = {}, [], {}
        self.mask_ops = mask_only_operations(layers, config.get("output_layers"))
        for i, obj in enumerate(layers):
            where = f"{at(self.where)}.layers[{i}]"
            if isinstance(obj, dict) and obj.get("name") in self.mask_ops:
                continue        # recomputed by graphspec; checked where used (keras_masks)
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
                declared = {k: v for k, v in spec.items() if k != "name"}
                self.imp.layers[ref] = declared
                ref = {"ref": ref, "spec": spec, "declared": declared, "call_args": {}}
            nodes = obj.get("inbound_nodes")
            if not isinstance(nodes, list):
                self.imp.fail(where + ".inbound_nodes", "expected a list of nodes")
            self.entries[keras_name] = (ref, len(nodes), cls)
            pending[keras_name] = [(n, data, f"{where}.inbound_nodes[{n}]")
                                   for n, data in enumerate(nodes)]
            order.append(keras_name)
        where = f"{at(self.where)}.input_layers"
        for layer, node, tensor in _triples(config.get("input_layers"), where):
            if layer not in declared_inputs or (node, tensor) != (0, 0):
                self.imp.fail(where, f"model input {[layer, node, tensor]} is not an "
                                     "InputLayer of this model")
            name = self._tensor((layer, 0, 0), spec_name(layer))
            if name != layer:
                self.imp.renamed[layer] = name
            self.inputs[name] = declared_inputs[layer][0]
        self._emit_calls(pending, order)
        outputs = []
        where = f"{at(self.where)}.output_layers"
        for layer, node, tensor in _triples(config.get("output_layers"), where):
            if self.entries.get(layer, (None,) * 3)[2] in ("Functional", "Model"):
                node -= 1   # Keras numbers a nested Functional's nodes from 1 here
            if (layer, node, tensor) not in self.tensors:
                self.imp.fail(where, f"output {[layer, node, tensor]} is not a tensor of "
                                     "this model")
            outputs.append(self.tensors[(layer, node, tensor)])
        return {"inputs": self.inputs, "calls": self.calls, "outputs": outputs}

    def _emit_calls(self, pending, order):
        """One call per node, each layer's nodes in index order, a node as soon as the
        tensors it reads exist; a layer waiting on a tensor is retried when that tensor
        is made (linear in the nodes even for a config listed in reverse order)."""
        waiting, ready = {}, deque(order)
        while ready:
            keras_name = ready.popleft()
            queue = pending[keras_name]
            while queue:
                node, data, where = queue[0]
                inputs, missing = self._node_inputs(keras_name, data, where)
                if missing is not None:
                    waiting.setdefault(missing, []).append(keras_name)
                    break
                queue.pop(0)
                for made in self._call(keras_name, node, inputs, data, where):
                    ready.extend(waiting.pop(made, []))
        stuck = [q[0] for q in pending.values() if q]
        if stuck:
            self.imp.fail(stuck[0][2], "this node's inputs are never produced (a cycle, "
                                       "or a reference to a missing layer or node)")

    def _call_args(self, keras_name) -> tuple:
        return getattr(CONVERTERS.get(self.entries[keras_name][2]), "call_args", ())

    def _node_inputs(self, keras_name, data, where):
        """(spec tensor names a node reads, None), or (None, the first tensor that is
        not produced yet)."""
        if not isinstance(data, dict) or not isinstance(data.get("args"), list):
            self.imp.fail(where, "expected a node {args, kwargs} (Keras 3 format)")
        kwargs = data.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            self.imp.fail(where + ".kwargs", "expected a mapping of call arguments")
        converter = CONVERTERS.get(self.entries[keras_name][2])
        tensor_keys = getattr(converter, "call_tensors", ())
        operation = self.entries[keras_name][2].startswith(OP_PREFIX)
        for key, value in kwargs.items():
            if key in self._call_args(keras_name) and isinstance(value, bool) \
                    or key in tensor_keys and isinstance(value, dict) \
                    or key == "mask" and not operation:
                continue        # a mask: checked once the layer is called (_call)
            if value not in (None, False):
                self.imp.fail(f"{where}.kwargs.{key}", f"call argument {key}={value!r} "
                              "is not supported (graphspec calls layers on tensors only)")
        leaves = []

        def flatten(value, path, depth=0):
            if isinstance(value, list) and depth < 8:
                for i, item in enumerate(value):
                    flatten(item, f"{path}[{i}]", depth + 1)
            elif isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                config = value.get("config") if isinstance(value.get("config"), dict) else {}
                history = config.get("keras_history")
                if not (isinstance(history, list) and len(history) == 3
                        and isinstance(history[0], str)
                        and all(type(i) is int for i in history[1:])):
                    self.imp.fail(path, "a tensor without a keras_history [layer, node, "
                                        "tensor]")
                leaves.append((tuple(history), path, config.get("shape")))
            elif operation and type(value) in (int, float):
                pass    # an operation's constant: part of its expression
            else:
                self.imp.fail(path, "a call argument that is not a tensor")
        flatten(data["args"], where + ".args")
        for key in tensor_keys:     # keyword tensors become the further inputs, in order
            if isinstance(kwargs.get(key), dict):
                flatten(kwargs[key], f"{where}.kwargs.{key}")
        if not leaves:
            self.imp.fail(where, "a call with no input tensor")
        names = []
        for key, path, _ in leaves:
            if key[0] not in self.entries:
                self.imp.fail(path, f"refers to unknown layer '{key[0]}'")
            if key not in self.tensors:
                return None, key
            names.append(self.tensors[key])
        # checked against graphspec's shape inference once the spec compiles
        self.imp.keras_shapes += [(self.name, name, shape, path)
                                  for name, (_, path, shape) in zip(names, leaves)]
        return names, None

    def _call(self, keras_name, node, inputs, data, where):
        ref, node_count, _ = self.entries[keras_name]
        spec_ref = ref if isinstance(ref, str) else ref["ref"]
        converter = CONVERTERS.get(self.entries[keras_name][2])
        for key in self._call_args(keras_name):
            # a layer argument in graphspec, a call argument in Keras: one value for all
            given = (data.get("kwargs") or {}).get(key, False)
            value = isinstance(given, dict) if key in converter.call_tensors else bool(given)
            if node == 0:
                ref["call_args"][key] = value
                if value:
                    ref["spec"][key] = ref["declared"][key] = True
            elif ref["call_args"][key] != value:
                self.imp.fail(f"{where}.kwargs.{key}", f"{key}={value} here but "
                              f"{ref['call_args'][key]} at node 0; graphspec's "
                              f"{ref['spec']['type']} takes it once for every call")
        mask = (data.get("kwargs") or {}).get("mask")
        if mask is not None:
            masks = mask if isinstance(mask, list) else [mask]
            forms = MaskForms(self.mask_ops, self.tensors)
            self.imp.mask_records.append((
                self.name, keras_name, inputs[:len(masks)],
                [None if m is None else forms.form(tuple(m["config"]["keras_history"]))
                 if isinstance(m, dict) and m.get("class_name") == "__keras_tensor__"
                 else "that is not a tensor" for m in masks], where))
        count = self.imp.output_count(ref if isinstance(ref, str) else ref["spec"])
        outs = []
        for i in range(count):
            base = spec_ref if node_count == 1 and count == 1 else \
                f"{spec_ref}__{node}" if count == 1 else f"{spec_ref}__{node}_{i}"
            outs.append(self._tensor((keras_name, node, i), base))
        self.calls.append({"layer": spec_ref, "in": inputs[0] if len(inputs) == 1 else inputs,
                           "out": outs[0] if count == 1 else outs})
        return [(keras_name, node, i) for i in range(count)]

    def sequential(self, layers, build_shape) -> dict:
        first = layers[0] if isinstance(layers[0], dict) else {}
        if first.get("class_name") == "InputLayer":
            self.imp.check_object(first, f"{at(self.where)}.layers[0]")
            name = spec_name(first["config"].get("name") or "input")
            self.inputs[name] = self._input(first, f"{at(self.where)}.layers[0]")
            layers, offset = layers[1:], 1
        elif isinstance(build_shape, list):
            name = f"{self.name}_input"
            self.inputs[name] = self._input({"config": {"batch_shape": build_shape}},
                                            f"{at(self.where)}.build_input_shape")
            offset = 0
        else:
            self.imp.fail(self.where, "a Sequential model without an input shape: build it "
                                      "(keras.Input first) before saving")
        self.tensor_names.add(name)
        groups = unique_group_names([l.get("class_name") if isinstance(l, dict) else ""
                                     for l in layers])
        current = name
        for i, obj in enumerate(layers):
            where = f"{at(self.where)}.layers[{i + offset}]"
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
