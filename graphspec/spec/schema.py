"""The JSON Schema of a spec, generated from the layer registry (one source of truth).

``graphspec schema`` prints it; editors use it through a yaml-language-server comment:
``# yaml-language-server: $schema=graphspec.schema.json``.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping

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


class LayerSchemas(Mapping):
    """Layer type -> the schema of that type's config, built from its class on first
    lookup: validating a spec imports the layer modules it uses, not every one."""

    def __init__(self):
        self._built: dict = {}

    def __getitem__(self, type_name) -> dict:
        cls = REGISTRY[type_name]
        schema = self._built.get(cls)     # by class: a class swapped in gets its own
        if schema is None:
            schema = self._built[cls] = _layer_schema(cls)
        return schema

    def __iter__(self):
        return iter(sorted(REGISTRY))

    def __len__(self):
        return len(REGISTRY)


LAYER_SCHEMAS = LayerSchemas()


@functools.lru_cache(maxsize=1)
def spec_schema() -> dict:
    """The published schema, built once per process from the registry (every layer
    type's module is imported): one ``if``/``then`` per layer type."""
    return spec_document({
        "type": "object", "required": ["type"],
        "properties": {"type": {"enum": sorted(REGISTRY)}},
        "allOf": [{"if": {"properties": {"type": {"const": t}}, "required": ["type"]},
                   "then": LAYER_SCHEMAS[t]} for t in sorted(REGISTRY)],
    })


def spec_document(layer: dict) -> dict:
    """The spec schema with ``layer`` as the definition every layer slot refers to
    (validation swaps in one that checks a layer against its own type's schema only)."""
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
            "layer": layer,
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
