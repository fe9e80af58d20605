"""The JSON Schema of a spec, generated from the layer registry (one source of truth).

``graphspec schema`` prints it; editors use it through a yaml-language-server comment:
``# yaml-language-server: $schema=graphspec.schema.json``.
"""
from __future__ import annotations

import functools

from ..layers.base import MAX_DIM
from ..layers.registry import REGISTRY

SPEC_VERSION = 1
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DTYPES = ["float32", "float64", "int32", "int64"]
COMMON_LAYER_KEYS = ("type", "name", "trainable", "description")


def _name():
    return {"type": "string", "pattern": NAME_PATTERN, "maxLength": 128}


def _layer_ref():
    """A layer slot: the name of a declared layer or model, or an inline layer."""
    return {"type": ["string", "object"],
            "if": {"type": "string"}, "then": {"$ref": "#/$defs/name"},
            "else": {"$ref": "#/$defs/layer"}}


def _layer_schema(cls) -> dict:
    properties = {
        "type": {"const": cls.TYPE},
        "name": {"$ref": "#/$defs/name", "description": "instance name (inline layers)"},
        "trainable": {"type": "boolean", "default": True},
        "description": {"type": "string"},
    }
    for arg, schema in cls.ARGS.items():
        properties[arg] = _layer_ref() if arg in getattr(cls, "WRAPS", ()) else schema
    out = {"type": "object", "properties": properties, "additionalProperties": False}
    if cls.REQUIRED:
        out["required"] = list(cls.REQUIRED)
    if cls.DOC:
        out["description"] = cls.DOC
    return out


def _tensor_names():
    return {"oneOf": [{"$ref": "#/$defs/name"},
                      {"type": "array", "items": {"$ref": "#/$defs/name"}, "minItems": 1}]}


@functools.lru_cache(maxsize=1)
def spec_schema() -> dict:
    """The schema, built once per process from the registry."""
    layer_types = sorted(REGISTRY)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://graphspec.dev/schema/v1.json",
        "title": "graphspec model spec",
        "type": "object",
        "additionalProperties": False,
        "required": ["graphspec", "models"],
        "properties": {
            "graphspec": {"const": SPEC_VERSION, "description": "spec format version"},
            "description": {"type": "string"},
            "params": {
                "type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": ["number", "boolean", "string"]},
                "description": "named constants; '${name}' anywhere in the spec is "
                               "replaced by the value (override with --set name=value)",
            },
            "layers": {"type": "object", "propertyNames": {"$ref": "#/$defs/name"},
                       "additionalProperties": {"$ref": "#/$defs/layer"}},
            "models": {"type": "object", "minProperties": 1,
                       "propertyNames": {"$ref": "#/$defs/name"},
                       "additionalProperties": {"$ref": "#/$defs/model"}},
            "training": {"$ref": "#/$defs/training"},
        },
        "$defs": {
            "name": _name(),
            "shape": {"type": "array", "maxItems": 8,
                      "items": {"type": ["integer", "null"], "minimum": 1,
                                "maximum": MAX_DIM},
                      "description": "feature shape; the batch axis is never written"},
            "input": {"type": "object", "required": ["shape"], "additionalProperties": False,
                      "properties": {"shape": {"$ref": "#/$defs/shape"},
                                     "dtype": {"enum": DTYPES, "default": "float32"},
                                     "description": {"type": "string"}}},
            "layer": {
                "type": "object", "required": ["type"],
                "properties": {"type": {"enum": layer_types}},
                "allOf": [{"if": {"properties": {"type": {"const": t}},
                                  "required": ["type"]},
                           "then": _layer_schema(REGISTRY[t])} for t in layer_types],
            },
            "call": {
                "type": "object", "required": ["layer", "in", "out"],
                "additionalProperties": False,
                "properties": {"layer": _layer_ref(), "in": _tensor_names(),
                               "out": _tensor_names(), "description": {"type": "string"}},
            },
            "model": {
                "type": "object", "required": ["inputs", "calls", "outputs"],
                "additionalProperties": False,
                "properties": {
                    "inputs": {"type": "object", "minProperties": 1,
                               "propertyNames": {"$ref": "#/$defs/name"},
                               "additionalProperties": {"$ref": "#/$defs/input"}},
                    "calls": {"type": "array", "items": {"$ref": "#/$defs/call"}},
                    "outputs": {"type": "array", "minItems": 1,
                                "items": {"$ref": "#/$defs/name"}},
                    "trainable": {"type": "boolean", "default": True},
                    "description": {"type": "string"},
                },
            },
            "training": training_schema(),
        },
    }


def training_schema() -> dict:
    from ..train.config import TRAINING_SCHEMA  # the training package owns its section
    return TRAINING_SCHEMA
