"""Compile schema-valid spec data into layer instances, models and nodes.

The compiler walks each model's calls in order. A call resolves its layer (a declared
instance, a model used as a layer, or an inline layer), looks up its input tensors,
asks the layer for its output shapes (shape inference runs once, here, and is cached
in the nodes), and records a :class:`Node`. Semantic problems — unknown references,
cycles through sub-models, shape mismatches, duplicate names, tensors used before they
exist — become located :class:`SpecError` s; compilation goes on after an error so one
run reports them all.
"""
from __future__ import annotations

import difflib
import math
import re

from .errors import GraphspecError, SpecError
from .expr import ExprError
from .graph.model import Model
from .graph.node import History, Node, SymbolicTensor
from .graph.walk import iter_layers
from .layers.base import MAX_WEIGHT_ELEMENTS, call_mask_sources
from .layers.registry import REGISTRY
from .spec.loader import Located
from .spec.schema import COMMON_LAYER_KEYS

_BROKEN = object()   # stands for a layer/model/tensor whose definition already failed


def _as_list(value):
    return list(value) if isinstance(value, list) else [value]


def _snake(type_name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type_name).lower()


class Compiler:
    def __init__(self, located: Located, dtype: str = "float32", model_class=Model):
        self.located = located
        self.model_class = model_class     # the caller's Model (subclass): see api.load
        self.spec = located.data
        self.dtype = dtype
        self.layer_specs = self.spec.get("layers") or {}
        self.model_specs = self.spec["models"]
        self.layers: dict = {}
        self.models: dict = {}
        self.errors: list = []
        self.warnings: list = []      # located, like errors; the spec still compiles
        self._compiling: list = []
        self._owner: dict = {}        # layer name -> spec path that defined it (errors)
        self._counters: dict = {}
        for name in self.layer_specs:
            if name in self.model_specs:
                self.error(("models", name), f"'{name}' names both a layer and a model; "
                                             "names must be unique", key=True)

    # -- errors -----------------------------------------------------------------------
    def error(self, path, message, key=False):
        self.errors.append(self.located.error(tuple(path), message, key=key))

    def warn(self, path, message):
        self.warnings.append(self.located.error(tuple(path), message))

    def _unknown(self, name, path, what="layer or model"):
        known = list(self.layer_specs) + list(self.model_specs)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else \
            f" (declared: {', '.join(known) or 'none'})"
        self.error(path, f"unknown {what} '{name}'{hint}")

    # -- layers ----------------------------------------------------------------------
    def resolve(self, ref, path):
        """The Layer or Model a call (or a wrapper) refers to, or _BROKEN."""
        if isinstance(ref, str):
            if ref in self.model_specs:
                return self.compile_model(ref, path)
            if ref in self.layers:
                return self.layers[ref]
            if ref in self.layer_specs:
                return self.build_layer(ref, self.layer_specs[ref], ("layers", ref))
            self._unknown(ref, path)
            return _BROKEN
        name = ref.get("name") or self._auto_name(ref["type"])
        if name in self.layer_specs or name in self.model_specs or name in self.layers:
            self.error(path + ("name",), f"inline layer name '{name}' is already used; "
                                         "call the declared instance by name instead")
            return _BROKEN
        return self.build_layer(name, ref, path)

    def _auto_name(self, type_name):
        base = _snake(type_name)
        while True:
            self._counters[base] = self._counters.get(base, 0) + 1
            name = f"{base}_{self._counters[base]}"
            if name not in self.layer_specs and name not in self.model_specs \
                    and name not in self.layers:
                return name

    def build_layer(self, name, config, path):
        if name in self.layers:
            return self.layers[name]
        self.layers[name] = _BROKEN           # guards against a wrapper wrapping itself
        cls = REGISTRY[config["type"]]
        args = {k: v for k, v in config.items() if k not in COMMON_LAYER_KEYS}
        for arg in getattr(cls, "WRAPS", ()):
            inner = self.resolve(args[arg], path + (arg,))
            if inner is _BROKEN:
                return _BROKEN
            args[arg] = inner
        try:
            layer = cls(name, args, trainable=config.get("trainable", True))
        except ExprError as exc:   # point at the offending field and character
            field = (exc.field,) if getattr(exc, "field", None) in args else ()
            self.error(path + field, f"{exc.message} (at character {exc.col + 1} of the "
                                     "expression)" if field else exc.message)
            return _BROKEN
        except GraphspecError as exc:
            self.error(path, _message(exc))
            return _BROKEN
        self.layers[name] = layer
        self._owner[name] = path
        for use in iter_layers(layer):   # what a wrapper creates gets a name too
            inner = use.layer
            if inner is layer or self.layers.get(inner.name) is inner:
                continue
            if inner.name in self.layers or inner.name in self.layer_specs:
                self.error(path, f"{layer.TYPE} '{name}' creates the layer '{inner.name}', "
                                 "but that name is already used: rename one of them")
                return _BROKEN
            self.layers[inner.name] = inner
        return layer

    # -- models ----------------------------------------------------------------------
    def compile_model(self, name, ref_path=None):
        if name in self.models:
            return self.models[name]
        if name in self._compiling:
            chain = " -> ".join(self._compiling[self._compiling.index(name):] + [name])
            self.error(ref_path or ("models", name),
                       f"model '{name}' calls itself through sub-models ({chain}): "
                       "a model graph must be acyclic")
            return _BROKEN
        self._compiling.append(name)
        try:
            model = self._compile_model(name, self.model_specs[name], ("models", name))
        finally:
            self._compiling.pop()
        self.models[name] = model
        return model

    def _compile_model(self, name, spec, path):
        tensors, nodes, inputs = {}, [], []
        for input_name, input_spec in spec["inputs"].items():
            dtype = input_spec.get("dtype", self.dtype)
            if dtype.startswith("float"):
                dtype = self.dtype
            tensor = SymbolicTensor(input_name, (None,) + tuple(input_spec["shape"]), dtype)
            tensors[input_name] = tensor
            inputs.append(tensor)
        for index, call in enumerate(spec["calls"]):
            node = self._compile_call(name, call, path + ("calls", index), tensors)
            if node is not None:
                nodes.append(node)
        outputs = []
        for i, out_name in enumerate(spec["outputs"]):
            tensor = tensors.get(out_name)
            if tensor is None:
                self.error(path + ("outputs", i), f"output '{out_name}' is not a tensor of "
                                                  f"model '{name}'{_known(tensors, out_name)}")
            elif tensor is not _BROKEN:
                outputs.append(tensor)
        if len(outputs) != len(spec["outputs"]):
            return _BROKEN
        return self.model_class(name, inputs, outputs, nodes,
                                trainable=spec.get("trainable", True))

    def _compile_call(self, model_name, call, path, tensors):
        in_names, out_names = _as_list(call["in"]), _as_list(call["out"])
        layer = self.resolve(call["layer"], path + ("layer",))
        inbound, ok = [], layer is not _BROKEN
        for i, in_name in enumerate(in_names):
            tensor = tensors.get(in_name)
            if tensor is None:
                where = path + ("in",) + ((i,) if isinstance(call["in"], list) else ())
                self.error(where, f"tensor '{in_name}' is used before it is produced (calls "
                                  f"run in order){_known(tensors, in_name)}")
                ok = False
            elif tensor is _BROKEN:
                ok = False
            inbound.append(tensor)
        for i, out_name in enumerate(out_names):
            if out_name in tensors:
                where = path + ("out",) + ((i,) if isinstance(call["out"], list) else ())
                self.error(where, f"tensor '{out_name}' is already defined in model "
                                  f"'{model_name}'; tensor names must be unique")
                ok = False
        if not ok:
            for out_name in out_names:
                tensors.setdefault(out_name, _BROKEN)
            return None
        shapes = [t.shape for t in inbound]
        try:
            out_shapes = layer.compute_output_shapes(shapes)
            layer.register_weights(shapes)
        except GraphspecError as exc:
            self.error(path, f"{layer.TYPE} '{layer.name}': {_message(exc)}"
                       if layer.name not in _message(exc) else _message(exc))
            for out_name in out_names:
                tensors[out_name] = _BROKEN
            return None
        too_big = [s for s in out_shapes
                   if math.prod(d or 1 for d in s[1:]) > MAX_WEIGHT_ELEMENTS]
        if too_big:
            self.error(path, f"{layer.TYPE} '{layer.name}' would produce {too_big[0]}: too large "
                             f"(more than {MAX_WEIGHT_ELEMENTS} values per sample)")
            for out_name in out_names:
                tensors[out_name] = _BROKEN
            return None
        if len(out_shapes) != len(out_names):
            self.error(path + ("out",), f"{layer.TYPE} '{layer.name}' produces "
                                        f"{len(out_shapes)} tensor(s) but 'out' names "
                                        f"{len(out_names)}")
            for out_name in out_names:
                tensors[out_name] = _BROKEN
            return None
        if not layer.inbound_nodes and not self._regularizers_fit(layer, path):
            for out_name in out_names:
                tensors[out_name] = _BROKEN
            return None
        node = Node(layer, len(layer.inbound_nodes), model_name, inbound)
        node.output_tensors = [
            SymbolicTensor(out_name, tuple(shape), self.dtype,
                           History(layer, node.node_index, i))
            for i, (out_name, shape) in enumerate(zip(out_names, out_shapes))]
        for tensor in node.output_tensors:
            tensors[tensor.name] = tensor
        self._pass_masks(layer, node, path)
        layer.inbound_nodes.append(node)
        return node

    def _pass_masks(self, layer, node, path):
        """Which masks the call's outputs carry (Keras' compute_mask, at compile time); a
        layer that cannot take the mask it is given drops it, as Keras does, and says so."""
        sources = [t.mask_source for t in node.input_tensors]
        outs = call_mask_sources(layer, sources, len(node.output_tensors))
        for tensor, source in zip(node.output_tensors, outs):
            tensor.mask_source = source
        if any(sources) and not layer.SUPPORTS_MASKING and not layer.makes_mask():
            dropped = sorted({s for s in sources if s})
            self.warn(path, f"{layer.TYPE} layer '{layer.name}' does not support masking: "
                            f"the mask made by {', '.join(repr(d) for d in dropped)} stops "
                            "here, as in Keras (later layers see every step); put the "
                            "masking after it, or pool/reduce the masked steps first")

    def _regularizers_fit(self, layer, call_path) -> bool:
        """Every weight regularizer set on ``layer`` (and what it wraps) names a weight
        the layer has, now that its first call built them; else a located error."""
        ok = True
        for use in iter_layers(layer):
            try:
                use.layer.weight_regularizers()
            except GraphspecError as exc:
                where = self._owner.get(use.layer.name, call_path)
                self.error(where, _message(exc))
                ok = False
        return ok

    # -- everything ------------------------------------------------------------------
    def compile(self):
        for name in self.model_specs:
            self.compile_model(name)
        for name, config in self.layer_specs.items():
            if name not in self.layers:   # declared but never called: still check it
                self.build_layer(name, config, ("layers", name))
        return self


def _known(tensors, name) -> str:
    close = difflib.get_close_matches(name, list(tensors), n=1)
    return f"; did you mean '{close[0]}'?" if close else \
        f" (defined so far: {', '.join(tensors) or 'none'})"


def _message(exc) -> str:
    return exc.message if isinstance(exc, SpecError) else str(exc)
