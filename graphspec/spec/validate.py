"""Schema validation of loaded spec data, with located, human-sized messages.

jsonschema does the validating; this module only turns its errors into
``FILE:LINE:COL: path: message`` lines that say what was expected and, for typos,
what was probably meant.
"""
from __future__ import annotations

import difflib
import functools
import re

import jsonschema
from jsonschema.exceptions import best_match

from ..errors import SpecError
from .loader import Located
from .schema import spec_schema

_PARAM_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@functools.lru_cache(maxsize=1)
def _validator():
    schema = spec_schema()
    return jsonschema.Draft202012Validator(schema)


def _did_you_mean(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_error(located: Located, error) -> list:
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _schema_error(located, best_match(error.context))
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        owner = error.instance.get("type")
        owner = f" for {owner} layer" if isinstance(owner, str) else ""
        extras = [k for k in error.instance if k not in allowed]
        return [located.error(path + (key,), f"unknown key '{key}'{owner}"
                              f"{_did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
                              key=True) for key in extras]
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else error.message
        return [located.error(path, f"missing required key '{name}'")]
    if error.validator == "enum":
        choices = error.validator_value
        what = "layer type" if path and path[-1] == "type" and len(choices) > 5 else "value"
        return [located.error(path, f"unknown {what} {_describe(error.instance)}"
                              f"{_did_you_mean(error.instance, choices)} (expected one of: "
                              f"{', '.join(map(str, choices))})")]
    if error.validator == "const":
        return [located.error(path, f"expected {error.validator_value!r}, "
                                    f"got {_describe(error.instance)}")]
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [located.error(path, f"expected {expected}, got "
                                    f"{type(error.instance).__name__} "
                                    f"{_describe(error.instance)}")]
    if error.validator == "pattern":
        return [located.error(path, f"{_describe(error.instance)} is not a valid name "
                                    "(letters, digits and _, not starting with a digit)")]
    message = error.message
    return [located.error(path, message if len(message) <= 200 else message[:197] + "...")]


def schema_errors(located: Located) -> list:
    errors = []
    for error in sorted(_validator().iter_errors(located.data),
                        key=lambda e: [str(p) for p in e.absolute_path]):
        errors.extend(_schema_error(located, error))
    unique, seen = [], set()
    for e in sorted(errors, key=lambda e: (e.line, e.col)):
        if e.format() not in seen:
            seen.add(e.format())
            unique.append(e)
    return unique


def substitute_params(located: Located, overrides: dict | None = None) -> list:
    """Replace ``"${name}"`` values by ``params`` entries (``overrides`` win), in place.

    Returns the errors (unknown names, overrides of undeclared params). This is how big
    reference models run at reduced sizes in tests: ``--set image_size=32``.
    """
    data = located.data
    if not isinstance(data, dict):
        return []
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    errors = []
    for name in overrides or {}:
        if name not in params:
            errors.append(SpecError(f"--set {name}: the spec declares no param '{name}'"
                                    f"{_did_you_mean(name, params)} (params: "
                                    f"{', '.join(params) or 'none'})", located.file, 1, 1))
    values = dict(params)
    values.update({k: v for k, v in (overrides or {}).items() if k in params})

    def walk(value, path):
        if isinstance(value, dict):
            for key in value:
                if path == () and key == "params":
                    continue
                value[key] = walk(value[key], path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = walk(item, path + (i,))
        elif isinstance(value, str):
            match = _PARAM_REF.match(value)
            if match:
                if match.group(1) in values:
                    return values[match.group(1)]
                errors.append(located.error(path, f"unknown param '{match.group(1)}'"
                                                  f"{_did_you_mean(match.group(1), values)}"))
        return value
    walk(data, ())
    return errors
