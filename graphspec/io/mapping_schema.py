"""The schema of a column mapping: which CSV/Parquet columns feed which model input or
target. The spec's ``training.data`` section and a weights file's metadata are checked
against it; :mod:`graphspec.io.tabular` reads the columns it names. Apart from the
readers so that checking a spec does not import them.
"""
from __future__ import annotations

MAX_VOCABULARY = 1 << 20

COLUMN_MAPPING_SCHEMA = {
    "description": "where one model input or target comes from in a CSV/Parquet file",
    "oneOf": [
        {"type": "object", "required": ["columns"], "additionalProperties": False,
         "properties": {"columns": {"oneOf": [
             {"type": "string", "minLength": 1, "maxLength": 4096,
              "description": "a column, or a span 'first:last' in header order"},
             {"type": "array", "minItems": 1, "maxItems": 1 << 16,
              "items": {"type": "string", "minLength": 1, "maxLength": 1024}}]}}},
        {"type": "object", "required": ["column"], "additionalProperties": False,
         "properties": {
             "column": {"type": "string", "minLength": 1, "maxLength": 1024},
             "categories": {"oneOf": [
                 {"const": "auto"},
                 {"type": "array", "minItems": 1, "maxItems": MAX_VOCABULARY,
                  "items": {"type": "string", "maxLength": 1024}}]}}},
    ],
}
# The ``data:`` section of a training job: model input/output name -> mapping.
DATA_SCHEMA = {"type": "object", "propertyNames": {"$ref": "#/$defs/name"},
               "additionalProperties": COLUMN_MAPPING_SCHEMA,
               "description": "columns of a CSV/Parquet --data file for each input and "
                              "target"}
