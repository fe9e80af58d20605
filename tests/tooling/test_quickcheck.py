"""The accept-only schema check (graphspec/spec/quickcheck.py) never accepts what
jsonschema refuses, and accepts every valid spec we ship (else validate would import
jsonschema for nothing). jsonschema stays the reference: it explains every error."""
import copy
import decimal
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from specs_util import MLP, SPECS

from graphspec.layers.registry import REGISTRY
from graphspec.spec import validate as V
from graphspec.spec.loader import load_file
from graphspec.spec.quickcheck import accepts
from graphspec.spec.schema import LAYER_SCHEMAS, spec_schema

SEEDS = sorted(SPECS.glob("*.yaml"))


def _jsonschema_valid(data) -> bool:
    return next(iter(V._validator().iter_errors(data)), None) is None


def _quick(data) -> bool:
    return accepts(V._validation_schema(), data)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_every_shipped_spec_is_accepted_without_jsonschema(path):
    located = load_file(path)
    assert V.substitute_params(located) == []
    assert _jsonschema_valid(located.data)
    assert _quick(located.data)


def test_the_validation_schema_is_the_published_one_dispatched_by_type():
    """Built without importing the layers, it says what the published schema says."""
    lazy = copy.copy(V.validation_schema())
    lazy["$defs"] = dict(lazy["$defs"])
    lazy["$defs"]["layer"] = dict(lazy["$defs"]["layer"],
                                  **{"x-layer-type": dict(LAYER_SCHEMAS)})
    assert lazy == V.validation_schema(spec_schema())


def test_registry_names_each_class_by_its_type():
    for name in REGISTRY:
        assert REGISTRY[name].TYPE == name


SCHEMA_CASES = [
    # (schema, instance): each pair is checked against jsonschema below
    ({"enum": [1, 2]}, True), ({"enum": [True]}, 1), ({"const": 1}, 1.0),
    ({"const": [1]}, [True]), ({"const": {"a": 1}}, {"a": 1}),
    ({"type": "integer"}, 8.0), ({"type": "integer"}, True), ({"type": "number"}, False),
    ({"type": "number"}, decimal.Decimal("1.5")), ({"minimum": 1}, decimal.Decimal("0.5")),
    ({"minimum": 1}, math.nan), ({"maximum": 1}, math.inf), ({"exclusiveMinimum": 0}, 0),
    ({"exclusiveMaximum": 0}, -0.0), ({"minimum": 1}, "0"),
    ({"type": "string", "pattern": "^[a-z]+$"}, "abc\n"), ({"pattern": "^a"}, 5),
    ({"maxLength": 2}, "ééé"), ({"minLength": 1}, ""), ({"maxItems": 1}, [1, 2]),
    ({"minProperties": 1}, {}), ({"required": ["a"]}, {"b": 1}), ({"required": ["a"]}, []),
    ({"propertyNames": {"type": "string"}}, {1: "x"}),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"a": "x", "b": 1}),
    ({"additionalProperties": {"type": "integer"}}, {"a": 1, "b": 2.5}),
    ({"patternProperties": {"^a": {"type": "string"}}, "additionalProperties": False}, {"a": "x"}),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 3),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None), ({"not": {"type": "string"}}, "x"),
    ({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"minimum": 3}}, "a"),
    ({"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"minimum": 3}}, 2),
    ({"items": {"type": "integer"}}, [1, "2"]), ({"prefixItems": [{"type": "integer"}]}, ["x"]),
    ({"uniqueItems": True}, [1, 1]), ({"multipleOf": 2}, 3), ({"format": "email"}, "x"),
    ({"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}}, 1),
    ({"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}}, "s"),
    ({"$ref": "#/$defs/missing"}, 1), (False, 1), (True, 1),
]


@pytest.mark.parametrize("schema,instance", SCHEMA_CASES)
def test_each_keyword_means_what_it_means_to_jsonschema(schema, instance):
    import jsonschema
    draft = jsonschema.Draft202012Validator
    cls = jsonschema.validators.extend(
        draft, type_checker=draft.TYPE_CHECKER.redefine("integer", V._is_integer))
    try:
        valid = cls(schema).is_valid(instance)
    except jsonschema.exceptions._WrappedReferencingError:
        valid = False          # a ref that does not resolve: never "valid"
    if accepts(schema, instance):
        assert valid, (schema, instance)
    # Where it implements every keyword and the instance is of a kind YAML gives, it
    # refuses exactly what jsonschema refuses (else validate would import it for nothing).
    unsure = {"prefixItems", "patternProperties", "uniqueItems", "multipleOf", "format"}
    if isinstance(schema, bool) or not (unsure & set(schema)
                                        or isinstance(instance, decimal.Decimal)):
        assert accepts(schema, instance) == valid, (schema, instance)


# -- mutated specs: an acceptance is always jsonschema's -----------------------------------
_SEED_DATA = [yaml.safe_load(p.read_text()) for p in SEEDS] + [yaml.safe_load(MLP)]
_SCALARS = st.one_of(st.integers(-3, 3), st.sampled_from([2 ** 24, 2 ** 63, 0, 8.0, 1.5]),
                     st.floats(allow_nan=True), st.booleans(), st.none(),
                     st.text(max_size=6),
                     st.sampled_from(["Dense", "relu", "x", "same", "valid", "adam", "mse",
                                      "glorot_uniform", "channels_last", "auto", "sum"]),
                     st.sampled_from(sorted(REGISTRY)))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def _containers(value, path=()):
    out = [(path, value)] if isinstance(value, (dict, list)) else []
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out += _containers(item, path + (key,))
    return out


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_mutated_spec_is_accepted_only_if_jsonschema_accepts_it(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(_SEED_DATA)))
    for _ in range(data.draw(st.integers(1, 3))):
        _, container = data.draw(st.sampled_from(_containers(doc)))
        if isinstance(container, dict) and container:
            key = data.draw(st.sampled_from(sorted(container, key=str)))
            op = data.draw(st.sampled_from(["set", "delete", "add"]))
            if op == "set":
                container[key] = data.draw(_VALUES)
            elif op == "delete":
                del container[key]
            else:
                container[data.draw(st.sampled_from(["units", "type", "name", "shape",
                                                     "activation", "x", "in", "loss"]))] = \
                    data.draw(_VALUES)
        elif isinstance(container, list) and container:
            i = data.draw(st.integers(0, len(container) - 1))
            container[i] = data.draw(_VALUES)
    if _quick(doc):
        assert _jsonschema_valid(doc)
