"""Keras 3 ``config.json`` (+ ``model.weights.h5``) -> a graphspec spec and its weights.

The config is walked as data. A Functional model's ``layers`` become declared layers (or
sub-models, for nested Functional/Sequential models); each entry of a layer's
``inbound_nodes`` becomes one call (``keras_nodes``), so a shared layer keeps one
instance with its nodes 0, 1, 2... in Keras' order, and ``inspect-nodes`` shows the
nodes Keras has. Layer names survive (characters a spec name cannot hold become ``_``).
Each layer's arguments convert by name through the table in ``keras_layers``; a Keras
argument graphspec lacks is accepted only at the value that computes the same thing.

Weights are read from ``layers/<group>/.../vars/<i>`` where ``<group>`` is the class
name in snake case with Keras' counter (``dense``, ``dense_1``), in config order; the
layer name Keras records on each group is checked against the config.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..initializers import INITIALIZERS as GS_INITIALIZERS
from ..layers.registry import REGISTRY
from .keras_archive import open_keras
from .keras_layers import (CONVERTERS, INITIALIZERS, KERAS_MODULES, KERAS_REFUSED,
                           MODEL_CLASSES, IGNORED_ARGS, INIT_IGNORED, KERAS_OPS, OPS_MODULE,
                           OP_PREFIX, VARIANCE_SCALING)
from .keras_masks import check_masks, check_run_time_masks
from .keras_nodes import ModelBuilder, at, spec_name
from .keras_spec import check_spec, spec_yaml

MAX_MODEL_DEPTH = 32
_TUPLE_ARGS = ("kernel_size", "strides", "pool_size", "dilation_rate")


@dataclass
class KerasImport:
    """The result: spec data, its YAML text, weights keyed ``layer/weight`` (None for a
    bare config.json) and the Keras names that had to change."""
    spec: dict
    text: str
    weights: dict | None
    renamed: dict
    notes: list


def import_keras(path) -> KerasImport:
    """Convert the Keras model at ``path`` (``.keras`` or ``config.json``); refuse, with
    the file and JSON path, anything graphspec cannot express exactly."""
    with open_keras(path) as archive:
        importer = _Importer(archive)
        try:
            top = importer.model(archive.config, "", "", 0)
        except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
            # a value of the wrong JSON type where the checks above did not look
            raise InputError(f"{archive.file}: config.json is not a Keras 3 model config "
                             f"this importer understands ({type(exc).__name__}: {exc})") \
                from None
    spec = {"graphspec": 1,
            "description": f"Keras model '{top}' imported by graphspec import-keras",
            "layers": importer.layers, "models": importer.models}
    if not importer.layers:
        del spec["layers"]
    text = spec_yaml(spec, archive.file, importer.notes)
    weights = importer.weights if archive.weights is not None else None
    graph = check_spec(text, archive.file, weights, importer.keras_shapes,
                       importer.from_config)
    check_masks(graph, importer.mask_records, archive.file)
    check_run_time_masks(graph, importer.mask_records, archive.file)
    return KerasImport(spec, text, weights, importer.renamed, importer.notes)


class _Importer:
    def __init__(self, archive):
        self.file, self.h5 = archive.file, archive.weights
        self.layers, self.models, self.weights = {}, {}, {}
        self.renamed, self._used = {}, set()
        self.keras_shapes = []   # (model, tensor, shape Keras recorded, JSON path)
        self.from_config = set()  # layers whose weights come from their own config
        self.notes = []           # what changed on the way, for the reviewer
        self.mask_records = []    # recorded mask arguments, checked (keras_masks)

    # -- errors and names ---------------------------------------------------------------
    def fail(self, where, message):
        raise InputError(f"{self.file}: {where or 'top level'}: {message}")

    def claim(self, keras_name, where) -> str:
        """A spec name for a layer or model: the Keras name where it is a valid, unused
        spec name, else the closest one that is."""
        if not isinstance(keras_name, str) or not keras_name:
            self.fail(where, "a layer without a name")
        name = base = spec_name(keras_name)
        n = 1
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
        if module == OPS_MODULE and registered in (None, cls):
            if cls not in KERAS_OPS:
                self.fail(where, f"Keras operation {cls} ('{name}') has no graphspec "
                                 f"converter; supported operations: "
                                 f"{', '.join(sorted(KERAS_OPS))} (with a tensor and a "
                                 "number or two tensors). Rewrite it as a graphspec "
                                 "expression (type: Lambda)")
            return OP_PREFIX + cls
        if module not in KERAS_MODULES or registered not in (None, cls):
            self.fail(where, f"{cls} '{name}' is a custom object (module {module!r}, "
                             f"registered_name {registered!r}); graphspec never imports "
                             "Python named in a file: rewrite it as a graphspec expression "
                             "(type: Lambda / Merge) or a built-in layer")
        if cls in KERAS_REFUSED:
            self.fail(where, f"{cls} layer '{name}': {KERAS_REFUSED[cls]}")
        self.check_nested(obj["config"], at(where))
        if cls not in CONVERTERS and cls not in MODEL_CLASSES and cls != "InputLayer":
            self.fail(where, f"Keras layer class {cls} ('{name}') has no graphspec "
                             f"converter; supported: {', '.join(sorted(CONVERTERS))}. "
                             "Rewrite it as a graphspec expression (Lambda / Merge) or "
                             "built-in layers")
        return cls

    def check_nested(self, value, where, depth=0):
        """Every object inside a layer's config (initializer, regularizer, constraint,
        activation, dtype policy...) must be Keras' own, not a custom one."""
        if depth > 64:
            self.fail(where, "config nested too deeply")
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.check_nested(item, f"{where}[{i}]", depth + 1)
        elif isinstance(value, dict):
            module, registered = value.get("module"), value.get("registered_name")
            if "module" in value and (not isinstance(module, str) or not (
                    module == "keras" or module.startswith("keras."))
                    or registered not in (None, value.get("class_name"))):
                self.fail(where, f"{value.get('class_name')!r} is a custom object (module "
                                 f"{module!r}, registered_name {registered!r}); graphspec "
                                 "never imports Python named in a file: use Keras' own "
                                 "objects, or rewrite the layer as a graphspec expression")
            for key, item in value.items():
                if key not in ("layer", "backward_layer", "layers"):   # checked as layers
                    self.check_nested(item, f"{where}.{key}", depth + 1)

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
            self.fail(at(where) + ".layers", "a model needs a non-empty layer list")
        self.check_h5_name(h5path, config.get("name"), where)
        build = ModelBuilder(self, name, where, h5path, depth)
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
        states = cls.STATES if hasattr(cls, "STATES") and config.get("return_state") else 0
        return 1 + states + int(bool(config.get("return_attention_scores")))

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
        if cls.startswith(OP_PREFIX):
            return self.operation(obj, cls[len(OP_PREFIX):], where)
        config = obj["config"]
        self.check_h5_name(h5path, config.get("name"), where)
        name = self.claim(config.get("name"), where)
        spec = {"type": cls, "name": name}
        if config.get("trainable") is False:
            spec["trainable"] = False
        spec.update(self.args(cls, config, where))
        if cls == "TimeDistributed":
            inner, inner_spec = self.layer(config.get("layer"), at(where) + ".layer",
                                           h5path + "/layer", depth)
            spec["layer"] = inner if inner_spec is None else inner_spec
        elif cls == "Bidirectional":
            spec["layer"], backward = self.bidirectional(config, where, h5path)
            if backward is not None:
                spec["backward_layer"] = backward
        else:
            self.read_vars(h5path, CONVERTERS[cls], name, config, where)
        return name, spec

    def operation(self, obj, cls, where):
        """A Keras operation node (``x + 3.0``, ``x * y``) as an expression layer: one
        node whose two arguments are tensors or numbers."""
        nodes = obj.get("inbound_nodes")
        if not isinstance(nodes, list) or len(nodes) != 1 \
                or not isinstance(nodes[0], dict):
            self.fail(where, f"operation {cls}: expected exactly one call")
        args, kwargs = nodes[0].get("args"), nodes[0].get("kwargs") or {}
        if not isinstance(args, list) or len(args) != 2 or kwargs:
            self.fail(where, f"operation {cls}: expected two positional arguments")
        tensors = sum(isinstance(a, dict) for a in args)
        names, k = [], 0
        for i, a in enumerate(args):
            if isinstance(a, dict):
                names.append("x" if tensors == 1 else f"x[{k}]")
                k += 1
            elif type(a) in (int, float) and np.isfinite(a):
                names.append(repr(float(a)))
            else:
                self.fail(f"{where}.inbound_nodes[0].args[{i}]",
                          f"operation {cls}: an argument that is neither a tensor nor a "
                          "finite number")
        if not tensors:
            self.fail(where, f"operation {cls} on constants only")
        name = self.claim(obj["config"].get("name") or obj.get("name"), where)
        return name, {"type": "Lambda", "name": name,
                      "expr": f"{names[0]} {KERAS_OPS[cls]} {names[1]}"}

    def bidirectional(self, config, where, h5path) -> tuple:
        """The wrapped layer's spec, and the backward layer's when it is not the wrapped
        layer mirrored (Keras' own default), else None."""
        inner = config.get("layer")
        cls = self.check_object(inner, at(where) + ".layer")
        if cls not in ("SimpleRNN", "LSTM", "GRU"):
            self.fail(at(where) + ".layer", f"Bidirectional wraps {cls}; graphspec "
                                               "wraps SimpleRNN, LSTM or GRU")
        forward = inner["config"]
        backward = config.get("backward_layer")
        keras_name = forward.get("name", "")
        name = self.claim(keras_name[len("forward_"):] if keras_name.startswith("forward_")
                          else keras_name, at(where) + ".layer")
        spec = {"type": cls, "name": name, **self.args(cls, forward, at(where) + ".layer")}
        if forward.get("trainable") is False:
            spec["trainable"] = False
        back_name, back_config, back_cls, spec_b = "backward_" + name, forward, cls, None
        if backward is not None:
            back_cls = self.check_object(backward, at(where) + ".backward_layer")
            same = {k: v for k, v in forward.items() if k not in ("name", "go_backwards")}
            other = {k: v for k, v in backward["config"].items()
                     if k not in ("name", "go_backwards")}
            mirror = back_cls == cls and _plain(same) == _plain(other) \
                and backward["config"].get("go_backwards") is True \
                and backward["config"].get("name") == back_name
            if not mirror:
                # Keras' backward_layer: a layer of its own (other units, activation...)
                if back_cls not in ("SimpleRNN", "LSTM", "GRU"):
                    self.fail(at(where) + ".backward_layer",
                              f"Bidirectional's backward layer is {back_cls}; graphspec "
                              "runs SimpleRNN, LSTM or GRU backwards")
                back_config = backward["config"]
                back_name = self.claim(back_config.get("name") or back_name,
                                       at(where) + ".backward_layer")
                spec_b = {"type": back_cls, "name": back_name,
                          **self.args(back_cls, back_config, at(where) + ".backward_layer")}
                if back_config.get("trainable") is False:
                    spec_b["trainable"] = False
        converter = CONVERTERS[cls]
        self.read_vars(h5path + "/forward_layer", converter, name, forward, where)
        self._used.add(back_name)
        self.read_vars(h5path + "/backward_layer", CONVERTERS[back_cls], back_name,
                       back_config, where)
        return spec, spec_b

    def read_vars(self, h5path, converter, name, config, where):
        if self.h5 is None:
            return
        groups = converter.var_groups(config)
        if groups == [("", [])] and converter.type == "Normalization":
            self.from_config.add(name)     # statistics given in the config
        for sub_path, names in groups:
            path = h5path + ("/" + sub_path if sub_path else "")
            arrays = self.h5.vars(path)
            if len(arrays) != len(names):
                self.fail(where, f"model.weights.h5 has {len(arrays)} variable(s) for layer "
                                 f"'{name}' at '{path}/vars', graphspec's {converter.type} "
                                 f"needs {len(names)} "
                                 f"({', '.join(map(str, names)) or 'none'})")
            for weight, array in zip(names, arrays):
                if weight is not None:
                    self.weights[f"{name}/{weight}"] = array

    # -- arguments ------------------------------------------------------------------------
    def args(self, cls, config, where) -> dict:
        schema, converter = REGISTRY[cls].ARGS, CONVERTERS[cls]
        wraps = getattr(REGISTRY[cls], "WRAPS", ())
        out = {}
        for key, value in config.items():
            here = f"{at(where)}.{key}"
            if key in ("name", "trainable") or key in wraps or key in IGNORED_ARGS or \
                    (cls == "Bidirectional" and key == "backward_layer"):
                continue
            if key == "dtype":
                self.check_dtype(value, here)
            elif key in schema:
                value = self.value(key, value, here, schema[key].get("default"))
                allowed = schema[key].get("enum")
                if allowed is not None and value not in allowed:
                    self.fail(here, f"{cls} {key}={value!r} is not one graphspec has "
                                    f"({', '.join(map(str, allowed))})")
                if "default" not in schema[key] or value != schema[key]["default"]:
                    out[key] = value
            elif key in converter.keras_only:
                if _plain(value) != converter.keras_only[key]:
                    self.fail(here, f"{cls} argument {key}={value!r} is not supported by "
                                  f"graphspec (only {converter.keras_only[key]!r})")
            else:
                self.fail(here, f"{cls} argument '{key}' has no graphspec equivalent")
        return out

    def check_dtype(self, value, where):
        if isinstance(value, dict):
            value = value.get("config", {}).get("name") \
                if value.get("class_name") == "DTypePolicy" else value.get("class_name")
        if value not in (None, "float32"):
            self.fail(where, f"dtype policy {value!r}: graphspec imports float32 models")

    def value(self, key, value, where, default=None):
        if key.endswith("_initializer"):
            return self.initializer(value, where, default)
        if key.endswith("_regularizer"):
            return self.regularizer(value, where)
        if key in ("activation", "recurrent_activation") and not isinstance(value, str):
            self.fail(where, "a custom activation; use a Keras activation name")
        if key in _TUPLE_ARGS and isinstance(value, list) and value \
                and all(v == value[0] for v in value):
            return value[0]
        return value

    def initializer(self, value, where, default):
        """The graphspec name of a Keras initializer. One graphspec lacks only matters
        when weights are initialised afresh, so it becomes the layer's default, with a
        note (the imported weights are Keras' own either way)."""
        if isinstance(value, str) and value in GS_INITIALIZERS:
            return value
        if isinstance(value, dict):
            cls = value.get("class_name")
            config = value.get("config") if isinstance(value.get("config"), dict) else {}
            config = {k: v for k, v in config.items() if k not in INIT_IGNORED}
            if cls in INITIALIZERS:
                name, defaults = INITIALIZERS[cls]
                if all(config.get(k, d) == d for k, d in defaults.items()) \
                        and set(config) <= set(defaults):
                    return name
            if cls == "VarianceScaling":
                key = (config.get("scale"), config.get("mode"), config.get("distribution"))
                if key in VARIANCE_SCALING:
                    return VARIANCE_SCALING[key]
        shown = repr(_plain(value))
        if isinstance(value, dict):
            args = ", ".join(f"{k}={v!r}" for k, v in config.items() if v is not None)
            shown = f"{value.get('class_name')}({args})"
        self.notes.append(f"{where}: initializer {shown} has no graphspec equivalent; "
                          f"the spec uses {default} (used only to initialise afresh)")
        return default

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


def _plain(value):
    """JSON data without Keras' bookkeeping (shared_object_id), for comparisons."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def weights_as_float32(weights: dict) -> dict:
    return {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
