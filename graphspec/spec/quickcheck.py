"""A fast, accept-only check of data against the spec schema, without jsonschema.

``accepts(schema, data)`` is True only if jsonschema would find no error: it implements
the JSON Schema keywords the spec schema uses, with jsonschema's meaning (Draft 2020-12,
``integer`` as :mod:`graphspec.spec.validate` redefines it), and answers False for
anything else — a keyword it does not know included. False means "not sure", never
"invalid": :func:`graphspec.spec.validate.schema_errors` then asks jsonschema, which
finds and explains the errors. So a valid spec is checked without importing jsonschema
(~50 ms of a cold ``graphspec validate``; issue 11), and every message still comes from
the one validator. tests/tooling/test_quickcheck.py holds the two to the same answers.
"""
from __future__ import annotations

import numbers
import re

# Keywords that say nothing about validity (annotations and containers of subschemas).
_ANNOTATIONS = frozenset(("$schema", "$id", "$defs", "$comment", "title", "description",
                          "default", "examples", "deprecated", "readOnly", "writeOnly"))
_TYPES = {"object": dict, "array": list, "string": str, "null": type(None)}


class _Unsure(Exception):
    """The check met something it does not implement: let jsonschema decide."""


def accepts(schema: dict, data) -> bool:
    """True if ``data`` certainly satisfies ``schema`` (refs resolve against it)."""
    try:
        return _Checker(schema).valid(data, schema)
    except (_Unsure, RecursionError):
        return False


def _is_type(instance, name: str) -> bool:
    if name == "integer":           # as validate._is_integer: no bool, no 8.0
        return isinstance(instance, int) and not isinstance(instance, bool)
    if name == "number":
        return _number(instance)
    if name == "boolean":
        return isinstance(instance, bool)
    kind = _TYPES.get(name)
    if kind is None:
        raise _Unsure(name)
    return isinstance(instance, kind)


def _equal(a, b) -> bool:
    """jsonschema's equality: True is not 1, 1 is 1.0, containers element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return a == b


def _number(instance) -> bool:
    """jsonschema's "number" (any numbers.Number but bool) for what YAML gives: int and
    float; another kind of number (Decimal, complex) is left to jsonschema."""
    if isinstance(instance, bool):
        return False
    if isinstance(instance, (int, float)):
        return True
    if isinstance(instance, numbers.Number):
        raise _Unsure(type(instance).__name__)
    return False


class _Checker:
    def __init__(self, root: dict):
        self.root = root
        self.refs: dict = {}
        self.patterns: dict = {}

    def resolve(self, ref: str):
        schema = self.refs.get(ref)
        if schema is None:
            if not ref.startswith("#/"):
                raise _Unsure(ref)
            schema = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(schema, dict) or part not in schema:
                    raise _Unsure(ref)
                schema = schema[part]
            self.refs[ref] = schema
        return schema

    def search(self, pattern: str, text: str) -> bool:
        compiled = self.patterns.get(pattern)
        if compiled is None:
            compiled = self.patterns[pattern] = re.compile(pattern)
        return compiled.search(text) is not None

    def valid(self, instance, schema) -> bool:
        if schema is True:
            return True
        if schema is False or not isinstance(schema, dict):
            if schema is False:
                return False
            raise _Unsure(schema)
        for keyword, value in schema.items():
            check = _KEYWORDS.get(keyword)
            if check is None:
                if keyword in _ANNOTATIONS or keyword in ("then", "else"):
                    continue        # then/else: applied by "if"
                raise _Unsure(keyword)
            if not check(self, value, instance, schema):
                return False
        return True


def _type(c, value, instance, schema):
    if isinstance(value, str):
        return _is_type(instance, value)
    return any(_is_type(instance, name) for name in value)


def _properties(c, value, instance, schema):
    if not isinstance(instance, dict):
        return True
    return all(c.valid(instance[name], sub) for name, sub in value.items() if name in instance)


def _additional(c, value, instance, schema):
    if not isinstance(instance, dict):
        return True
    if "patternProperties" in schema:
        raise _Unsure("patternProperties")
    known = schema.get("properties", {})
    extras = [name for name in instance if name not in known]
    if value is False:
        return not extras
    return all(c.valid(instance[name], value) for name in extras)


def _property_names(c, value, instance, schema):
    return not isinstance(instance, dict) or all(c.valid(name, value) for name in instance)


def _required(c, value, instance, schema):
    return not isinstance(instance, dict) or all(name in instance for name in value)


def _min_properties(c, value, instance, schema):
    return not isinstance(instance, dict) or len(instance) >= value


def _items(c, value, instance, schema):
    if not isinstance(instance, list):
        return True
    if "prefixItems" in schema:
        raise _Unsure("prefixItems")
    return all(c.valid(item, value) for item in instance)


def _min_items(c, value, instance, schema):
    return not isinstance(instance, list) or len(instance) >= value


def _max_items(c, value, instance, schema):
    return not isinstance(instance, list) or len(instance) <= value


def _min_length(c, value, instance, schema):
    return not isinstance(instance, str) or len(instance) >= value


def _max_length(c, value, instance, schema):
    return not isinstance(instance, str) or len(instance) <= value


def _pattern(c, value, instance, schema):
    return not isinstance(instance, str) or c.search(value, instance)


# The comparisons are written as jsonschema's (error if instance < minimum, ...), so a
# NaN passes or fails here exactly as there.
def _minimum(c, value, instance, schema):
    return not _number(instance) or not instance < value


def _maximum(c, value, instance, schema):
    return not _number(instance) or not instance > value


def _exclusive_minimum(c, value, instance, schema):
    return not _number(instance) or not instance <= value


def _exclusive_maximum(c, value, instance, schema):
    return not _number(instance) or not instance >= value


def _enum(c, value, instance, schema):
    return any(_equal(instance, choice) for choice in value)


def _const(c, value, instance, schema):
    return _equal(instance, value)


def _ref(c, value, instance, schema):
    return c.valid(instance, c.resolve(value))


def _all_of(c, value, instance, schema):
    return all(c.valid(instance, sub) for sub in value)


def _any_of(c, value, instance, schema):
    return any(c.valid(instance, sub) for sub in value)


def _one_of(c, value, instance, schema):
    return sum(1 for sub in value if c.valid(instance, sub)) == 1


def _not(c, value, instance, schema):
    return not c.valid(instance, value)


def _if(c, value, instance, schema):
    branch = "then" if c.valid(instance, value) else "else"
    return branch not in schema or c.valid(instance, schema[branch])


def _layer_type(c, by_type, instance, schema):
    """``x-layer-type`` (graphspec.spec.validate): a layer against its type's schema."""
    if isinstance(instance, dict) and isinstance(instance.get("type"), str):
        sub = by_type.get(instance["type"])
        if sub is not None:
            return c.valid(instance, sub)
    return True


_KEYWORDS = {
    "type": _type, "properties": _properties, "additionalProperties": _additional,
    "propertyNames": _property_names, "required": _required,
    "minProperties": _min_properties, "items": _items, "minItems": _min_items,
    "maxItems": _max_items, "minLength": _min_length, "maxLength": _max_length,
    "pattern": _pattern, "minimum": _minimum, "maximum": _maximum,
    "exclusiveMinimum": _exclusive_minimum, "exclusiveMaximum": _exclusive_maximum,
    "enum": _enum, "const": _const, "$ref": _ref, "allOf": _all_of, "anyOf": _any_of,
    "oneOf": _one_of, "not": _not, "if": _if, "x-layer-type": _layer_type,
}
