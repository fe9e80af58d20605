"""Schema validation of loaded spec data, with located, human-sized messages.

jsonschema does the validating (the one validator: a faster hand-written "accept"
path was measured, 2x on a 10,000-node spec, and left out, because it was a second
implementation of the schema's semantics); this module only turns its errors into
``FILE:LINE:COL: path: message`` lines that say what was expected and, for typos,
what was probably meant.
"""
from __future__ import annotations

import copy
import difflib
import functools
import re

from ..layers.registry import REGISTRY
from .loader import Located, spec_error
from .schema import LAYER_SCHEMAS, spec_document

_PARAM_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 8.0 as an integer; numpy does not (np.zeros((4, 8.0)) raises),
    # so a spec must write integers as integers. bool is never a number.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _layer_type(validator, by_type, instance, schema):
    """``x-layer-type``: check a layer against its own type's schema only. (The
    published schema's ``allOf`` holds one ``if``/``then`` per layer type, so every
    layer would evaluate ~60 ``if`` clauses: half the time of validating a big spec.)
    ``by_type`` is :data:`~graphspec.spec.schema.LAYER_SCHEMAS`, which builds a type's
    schema on first use, so only the layer modules a spec uses are imported."""
    if isinstance(instance, dict) and isinstance(instance.get("type"), str):
        sub = by_type.get(instance["type"])
        if sub is not None:
            yield from validator.descend(instance, sub)


def validation_schema(published: dict | None = None) -> dict:
    """The schema ``validate`` runs: what the published one accepts, dispatched by type.
    Without ``published``, built without importing any layer module."""
    if published is None:
        return spec_document({"type": "object", "required": ["type"],
                              "properties": {"type": {"enum": sorted(REGISTRY)}},
                              "x-layer-type": LAYER_SCHEMAS})
    schema = copy.deepcopy(published)
    layer = schema["$defs"]["layer"]
    layer["x-layer-type"] = {case["if"]["properties"]["type"]["const"]: case["then"]
                             for case in layer.pop("allOf")}
    return schema


@functools.lru_cache(maxsize=1)
def _validation_schema() -> dict:
    return validation_schema()


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema   # ~50 ms of a cold start: imported when a spec is checked
    draft = jsonschema.Draft202012Validator
    cls = jsonschema.validators.extend(
        draft, type_checker=draft.TYPE_CHECKER.redefine("integer", _is_integer),
        validators={"x-layer-type": _layer_type})
    return cls(_validation_schema())


def _did_you_mean(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}
_DISCRIMINATORS = ("type", "name")


def _json_type(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _branch_rank(errors, instance) -> int:
    """How well the instance fits one branch of a oneOf/anyOf, from that branch's errors.

    0: right JSON type and discriminator (``type:``/``name:``), so its errors are the
    real ones; 1: excluded by its discriminator, a ``not`` or a missing required key;
    2: wrong JSON type.
    """
    rank = 0
    for e in errors:
        at_root = len(e.relative_path) == 0
        if at_root and e.validator == "type":
            return 2
        if at_root and e.validator == "enum" and isinstance(e.validator_value, list) and not any(
                _json_type(v) == _json_type(instance) for v in e.validator_value):
            return 2
        if at_root and e.validator in ("not", "required"):
            rank = 1
        if (len(e.relative_path) == 1 and e.relative_path[0] in _DISCRIMINATORS
                and e.validator in ("const", "enum")):
            rank = 1
    return rank


def _branch_errors(located: Located, error) -> list:
    """Errors of a failed oneOf/anyOf, from the branch the instance was meant for."""
    branches = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    ranked = sorted((_branch_rank(errs, error.instance), i) for i, errs in branches.items())
    best = ranked[0][0]
    path, instance = tuple(error.absolute_path), error.instance
    if best == 0:
        chosen = [branches[i] for r, i in ranked if r == 0]
        errs = min(chosen, key=lambda errs: (len(errs), -max(len(e.path) for e in errs)))
        return [e for sub in errs for e in _schema_error(located, sub)]
    if best == 1 and isinstance(instance, dict):
        for key in _DISCRIMINATORS:
            choices = []
            for errs in branches.values():
                for e in errs:
                    if list(e.relative_path) == [key] and e.validator in ("const", "enum"):
                        value = e.validator_value
                        choices += value if isinstance(value, list) else [value]
            if choices and key in instance:
                choices = sorted(set(map(str, choices)))
                return [located.error(path + (key,), f"unknown {key} {_describe(instance[key])}"
                                      f"{_did_you_mean(instance[key], choices)} (expected one "
                                      f"of: {', '.join(choices)})")]
    if best == 2:
        expected = []
        for errs in branches.values():
            for e in errs:
                if len(e.relative_path) == 0 and e.validator == "type":
                    value = e.validator_value
                    expected += value if isinstance(value, list) else [value]
                elif len(e.relative_path) == 0 and e.validator == "enum":
                    expected += [_json_type(v) for v in e.validator_value]
        expected = list(dict.fromkeys(expected))
        return [located.error(path, f"expected {' or '.join(expected)}, got "
                                    f"{_json_type(instance)} {_describe(instance)}")]
    from jsonschema.exceptions import best_match
    return _schema_error(located, best_match([e for r, i in ranked if r == best
                                              for e in branches[i]]))


def _schema_error(located: Located, error) -> list:
    if error.validator in ("oneOf", "anyOf") and error.context:
        return _branch_errors(located, error)
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        owner = error.instance.get("type")
        what = "optimizer" if "optimizer" in path else "layer"
        owner = f" for {owner} {what}" if isinstance(owner, str) else ""
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
                                    f"{_json_type(error.instance)} "
                                    f"{_describe(error.instance)}")]
    if error.validator == "pattern":
        return [located.error(path, f"{_describe(error.instance)} is not a valid name "
                                    "(letters, digits and _, not starting with a digit)")]
    message = error.message
    shown = repr(error.instance)
    if len(shown) > 60 and shown in message:
        # "999...999 is greater than the maximum of 16777216": keep what is wrong visible.
        message = message.replace(shown, _describe(error.instance))
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


def broken_entries(located: Located):
    """The ``(section, name)`` entries of ``layers``/``models`` that fail the schema (a
    ``training`` error counts as none: validate leaves jobs out of a partial check), or
    None when an error is not inside one entry (then nothing can be compiled)."""
    entries = set()
    for error in _validator().iter_errors(located.data):
        path = tuple(error.absolute_path)
        if path[:1] == ("training",):
            continue
        if len(path) < 2 or path[0] not in ("layers", "models"):
            return None
        entries.add(path[:2])
    return entries


# -- training jobs -----------------------------------------------------------------------
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
            errors.append(spec_error(f"--set {name}: the spec declares no param '{name}'"
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
