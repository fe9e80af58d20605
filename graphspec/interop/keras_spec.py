"""Imported spec data -> reviewable YAML text, checked by the real pipeline before use.

The text is written in the shipped specs' style (one flow mapping per layer and per
call) and then read back through the loader, the schema and the compiler: what
``import-keras`` writes is exactly what was validated, and each weight is checked
against the shape the compiled layer needs.
"""
from __future__ import annotations

import json

import numpy as np
import yaml

from ..compiler import Compiler
from ..errors import InputError
from ..graph.graph import Graph
from ..initializers import initialize
from ..spec.loader import load_text
from ..spec.validate import schema_errors, substitute_params


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False,
                          width=1 << 30).strip()


def _key(name: str) -> str:
    """``name`` as a mapping key, quoted where YAML would read it as something else
    (a layer called ``on`` or ``null``)."""
    return _flow([name])[1:-1]


def spec_yaml(spec: dict, source: str) -> str:
    lines = [f"# Imported from {json.dumps(str(source))} by graphspec import-keras.",
             "graphspec: 1", f"description: {json.dumps(spec['description'])}"]
    if spec.get("layers"):
        lines.append("layers:")
        lines += [f"  {_key(name)}: {_flow(layer)}" for name, layer in spec["layers"].items()]
    lines.append("models:")
    for name, model in spec["models"].items():
        lines.append(f"  {_key(name)}:")
        if model.get("trainable") is False:
            lines.append("    trainable: false")
        lines.append("    inputs:")
        lines += [f"      {_key(k)}: {_flow(v)}" for k, v in model["inputs"].items()]
        lines.append("    calls:" if model["calls"] else "    calls: []")
        lines += [f"      - {_flow(call)}" for call in model["calls"]]
        lines.append(f"    outputs: {_flow(model['outputs'])}")
    return "\n".join(lines) + "\n"


def _same_shape(keras, ours) -> bool:
    """Equal rank, equal wherever both know the size (Keras may know less)."""
    if not isinstance(keras, list) or len(keras) != len(ours):
        return False
    return all(a is None or b is None or a == b for a, b in zip(keras, ours))


def compile_text(text: str, name: str) -> Graph:
    """The uninitialised Graph of spec ``text``; any problem is one InputError line."""
    located = load_text(text, name)
    errors = substitute_params(located) + schema_errors(located)
    compiler = None
    if not errors:
        compiler = Compiler(located).compile()
        errors = compiler.errors
    if errors:
        raise InputError(f"{name}: the converted spec does not compile: "
                         f"{errors[0].path}: {errors[0].message}")
    return Graph(located.file, compiler.layers, compiler.models, None, spec=located.data)


def check_spec(text: str, source: str, weights: dict | None, keras_shapes=(),
               from_config=()) -> Graph:
    """Compile ``text``; every tensor shape Keras recorded must be the one graphspec
    infers, and every weight must have the shape its layer needs. The weights of the
    layers in ``from_config`` are their initial values (statistics Keras keeps in the
    layer config rather than in variables) and are added to ``weights``."""
    graph = compile_text(text, f"{source} (as a spec)")
    for model, tensor, shape, where in keras_shapes:
        ours = graph.models[model].tensor(tensor).shape
        if not _same_shape(shape, ours):
            raise InputError(f"{source}: {where}: Keras records shape "
                             f"{tuple(shape) if isinstance(shape, list) else shape!r} "
                             f"for this input, graphspec infers {ours}: the layers differ "
                             "in meaning, so the model is not imported")
    if weights is None:
        return graph
    specs = graph.weight_specs()
    rng = np.random.default_rng(0)
    for key, spec in specs.items():
        if key.split("/")[0] in from_config and key not in weights:
            weights[key] = np.asarray(initialize(spec.initializer, spec.shape, rng,
                                                 "float32"))
    for key, spec in specs.items():
        if key not in weights:
            raise InputError(f"{source}: model.weights.h5 has no value for '{key}'")
        value = weights[key]
        if value.shape != tuple(spec.shape):
            raise InputError(f"{source}: weight '{key}' has shape {value.shape} in "
                             f"model.weights.h5; graphspec's layer needs {spec.shape}")
        if not np.all(np.isfinite(value)):
            raise InputError(f"{source}: weight '{key}' contains NaN or Inf")
    extra = sorted(set(weights) - set(specs))
    if extra:
        raise InputError(f"{source}: model.weights.h5 holds '{extra[0]}', which no "
                         "graphspec layer uses")
    return graph
