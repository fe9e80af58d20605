"""The ``training:`` section of a spec: named training jobs.

A job names the model it trains and how: losses by output name (or one for all),
loss weights, extra loss terms written as expressions over any tensor of the model,
stateful loss variables updated once per step (BEGAN's ``k``), frozen layers, the
optimizer and metrics. ``graphspec train --job NAME`` picks one; CLI flags override.
"""
from __future__ import annotations

from ..io.mapping_schema import DATA_SCHEMA
from .losses import LOSS_SCHEMA
from .optimizers import OPTIMIZER_SCHEMA

_EXPR = {"type": "string", "minLength": 1, "maxLength": 2000}
_NAME = {"$ref": "#/$defs/name"}
# Built-in losses and optimizers publish their exact argument tables; a custom loss is
# an expression of y_true and y_pred.
_CUSTOM_LOSS = {"type": "object", "required": ["expr"], "additionalProperties": False,
                "properties": {"expr": _EXPR},
                "description": "custom per-sample loss of y_true and y_pred"}
_LOSS = {"oneOf": LOSS_SCHEMA["oneOf"] + [_CUSTOM_LOSS]}
_OPTIMIZER = OPTIMIZER_SCHEMA

TRAINING_SCHEMA = {
    "type": "object",
    "propertyNames": _NAME,
    "additionalProperties": {
        "type": "object", "required": ["model"], "additionalProperties": False,
        "properties": {
            "model": _NAME,
            "loss": {"oneOf": [_LOSS, {"type": "object", "not": {"anyOf": [
                {"required": ["name"]}, {"required": ["expr"]}]},
                "additionalProperties": _LOSS}]},
            "loss_weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "terms": {"type": "object", "propertyNames": _NAME, "additionalProperties": _EXPR,
                      "description": "named scalar expressions over model tensors"},
            "added_losses": {"type": "array", "items": {"oneOf": [
                _EXPR, {"type": "object", "required": ["expr"], "additionalProperties": False,
                        "properties": {"expr": _EXPR, "weight": {"type": "number"}}}]}},
            "state": {"type": "object", "propertyNames": _NAME, "additionalProperties": {
                "type": "object", "required": ["initial", "update"],
                "additionalProperties": False,
                "properties": {"initial": {"type": "number"}, "update": _EXPR}}},
            "freeze": {"type": "array", "items": _NAME},
            "optimizer": _OPTIMIZER,
            "metrics": {"oneOf": [{"type": "array", "items": {"type": "string"}},
                                  {"type": "object", "additionalProperties": {
                                      "type": "array", "items": {"type": "string"}}}]},
            "epochs": {"type": "integer", "minimum": 1, "maximum": 1000000},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 1 << 24},
            "validation_split": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "shuffle": {"type": "boolean"},
            "data": DATA_SCHEMA,     # columns of a CSV/Parquet file -> inputs/outputs
            "description": {"type": "string"},
        },
    },
}
