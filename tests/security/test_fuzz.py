"""Fuzzing ``validate``: mutated reference specs are accepted or refused with located
errors — never a crash, never a traceback.

Every spec in ``specs/`` is a seed. Hypothesis mutates it as text (truncate, insert
random unicode, delete or duplicate lines, replace numbers with huge, negative or odd
ones) or as data (delete keys, change value types, swap names, insert values), and the
result goes through ``graphspec.validate`` and the ``validate`` command. Run more with
``GRAPHSPEC_FUZZ_EXAMPLES=5000 python -m pytest tests/security -k fuzz`` (``make fuzz``).

Crashes this test found became explicit cases in ``test_hostile_inputs.py`` and
``test_regressions.py``.
"""
import os
import re
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from specs_util import MLP, SPECS

import graphspec
from graphspec.cli import main
from graphspec.errors import SpecError

SEEDS = sorted(SPECS.glob("*.yaml"))
SEED_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SEEDS}
SEED_TEXTS["inline_mlp.yaml"] = MLP.lstrip()

FUZZ = settings(max_examples=int(os.environ.get("GRAPHSPEC_FUZZ_EXAMPLES", "200")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])

NUMBERS = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([2 ** 24, 2 ** 24 + 1, 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 12, -10 ** 12,
                     10 ** 100, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=20),
                    st.sampled_from(["${image_size}", "${nope}", "Dense", "relu", "x",
                                     "x.__class__", "same", "valid", "-1", "None"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8)


# -- text mutations ----------------------------------------------------------------------
def _mutate_text(text: str, data) -> str:
    op = data.draw(st.sampled_from(["truncate", "insert", "delete_line", "duplicate_line",
                                    "number", "swap_lines", "replace_char", "escape"]))
    lines = text.splitlines(keepends=True)
    if op == "truncate":
        return text[:data.draw(st.integers(0, len(text)))]
    if op == "insert":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + data.draw(st.text(min_size=1, max_size=12)) + text[at:]
    if op == "replace_char" and text:
        at = data.draw(st.integers(0, len(text) - 1))
        char = data.draw(st.sampled_from(list("[]{}:,-&*!|>'\"#%@` \t\n") + ["\x00", "é"]))
        return text[:at] + char + text[at + 1:]
    if op == "escape":   # a double-quoted YAML escape, valid or not ("\U16777216")
        at = data.draw(st.integers(0, len(text)))
        escape = data.draw(st.sampled_from(["x", "u", "U", "N", "_", "L", "P", "0", "e"]))
        digits = data.draw(st.text("0123456789abcdefABCDEFg", max_size=9))
        return text[:at] + f' "\\{escape}{digits}" ' + text[at:]
    if op in ("delete_line", "duplicate_line") and lines:
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i:i + 1] = [] if op == "delete_line" else [lines[i], lines[i]]
        return "".join(lines)
    if op == "swap_lines" and len(lines) > 1:
        i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)
    if op == "number":
        spots = [m.span() for m in re.finditer(r"-?\d+(\.\d+)?", text)]
        if spots:
            start, end = spots[data.draw(st.integers(0, len(spots) - 1))]
            return text[:start] + repr(data.draw(NUMBERS)) + text[end:]
    return text


# -- schema-aware mutations: values the schema allows, to reach the compiler and layers ---
def _edge_integers(low, high):
    low = -2 ** 31 if low is None else low
    high = 2 ** 31 if high is None else high
    edges = [v for v in (low, low + 1, 0, 1, 2, 3, 7, high - 1, high) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def from_schema(schema, depth=0):
    """A strategy for values valid (mostly) under a layer-argument schema fragment."""
    if not isinstance(schema, dict) or depth > 3:
        return VALUES
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema(s, depth + 1) for s in schema[key]])
    types = schema.get("type", [])
    types = types if isinstance(types, list) else [types]
    options = []
    for kind in types:
        if kind == "integer":
            options.append(_edge_integers(schema.get("minimum"), schema.get("maximum")))
        elif kind == "number":
            options.append(st.floats(schema.get("minimum", -1e6),
                                     min(schema.get("maximum", 1e6),
                                         schema.get("exclusiveMaximum", 1e6) - 1e-9)))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif kind == "string":
            options.append(st.sampled_from(["x", "x * 2", "x[0] + x[1]", "x[:, :1]",
                                            "mean(x, axis=-1)", "reshape(x, [-1])",
                                            "(None, 4)", "batch", "x @ x"]))
        elif kind == "array":
            options.append(st.lists(from_schema(schema.get("items", {}), depth + 1),
                                    min_size=schema.get("minItems", 0),
                                    max_size=min(schema.get("maxItems", 6), 6)))
    return st.one_of(options) if options else VALUES


def _schema_aware(doc, data):
    from graphspec.layers.registry import REGISTRY
    def mapping(value):
        return value if isinstance(value, dict) else {}

    layers = [cfg for cfg in mapping(doc.get("layers")).values() if isinstance(cfg, dict)]
    models = [m for m in mapping(doc.get("models")).values() if isinstance(m, dict)]
    op = data.draw(st.sampled_from(["arg", "shape", "rewire", "retype_layer"]))
    if op in ("arg", "retype_layer") and layers:
        config = data.draw(st.sampled_from(layers))
        if op == "retype_layer":
            config["type"] = data.draw(st.sampled_from(sorted(REGISTRY)))
        cls = REGISTRY.get(config.get("type"))
        if cls is not None and cls.ARGS:
            for arg in list(cls.REQUIRED) + [data.draw(st.sampled_from(sorted(cls.ARGS)))]:
                if arg not in getattr(cls, "WRAPS", ()):
                    config[arg] = data.draw(from_schema(cls.ARGS[arg]))
    elif op == "shape" and models:
        inputs = [i for i in mapping(data.draw(st.sampled_from(models)).get("inputs")).values()
                  if isinstance(i, dict)]
        if inputs:
            data.draw(st.sampled_from(inputs))["shape"] = data.draw(st.lists(
                st.one_of(_edge_integers(1, 2 ** 24), st.none()), max_size=8))
    elif op == "rewire" and models:
        model = data.draw(st.sampled_from(models))
        calls = model.get("calls") if isinstance(model.get("calls"), list) else []
        calls = [c for c in calls if isinstance(c, dict)]
        names = list(mapping(model.get("inputs"))) + [
            n for c in calls for n in (c.get("out") if isinstance(c.get("out"), list)
                                       else [c.get("out")]) if isinstance(n, str)]
        if calls and names:
            call = data.draw(st.sampled_from(calls))
            call["in"] = data.draw(st.one_of(st.sampled_from(names),
                                             st.lists(st.sampled_from(names), min_size=1,
                                                      max_size=3)))
    return doc


# -- data mutations ----------------------------------------------------------------------
def _containers(value, path=()):
    """Every (path, container) in the document, the root first."""
    out = [(path, value)] if isinstance(value, (dict, list)) else []
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        out += _containers(item, path + (key,))
    return out


def _names(value) -> list:
    """Strings that look like names in the document (layer, model and tensor names)."""
    found = set()
    for _, container in _containers(value):
        keys = container.keys() if isinstance(container, dict) else []
        values = container.values() if isinstance(container, dict) else container
        found.update(k for k in keys if isinstance(k, str))
        found.update(v for v in values if isinstance(v, str) and v.isidentifier())
    return sorted(found) or ["x"]


def _mutate_data(doc, data):
    containers = _containers(doc)
    if not containers:
        return data.draw(VALUES)
    _, target = containers[data.draw(st.integers(0, len(containers) - 1))]
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    op = data.draw(st.sampled_from(["delete", "retype", "swap_name", "insert", "number"]))
    if op == "insert" or not keys:
        if isinstance(target, dict):
            target[data.draw(st.sampled_from(_names(doc) + ["type", "units", "shape", "in",
                                                            "out", "layer", "expr"]))] = \
                data.draw(VALUES)
        else:
            target.insert(data.draw(st.integers(0, len(target))), data.draw(VALUES))
        return doc
    key = data.draw(st.sampled_from(keys))
    if op == "delete":
        del target[key]
    elif op == "retype":
        target[key] = data.draw(VALUES)
    elif op == "swap_name":
        target[key] = data.draw(st.sampled_from(_names(doc)))
    elif op == "number":
        target[key] = data.draw(NUMBERS)
    return doc


@st.composite
def mutated_specs(draw, schema_aware_only=False):
    name = draw(st.sampled_from(sorted(SEED_TEXTS)))
    text = SEED_TEXTS[name]
    if schema_aware_only:
        doc = yaml.safe_load(text)
        for _ in range(draw(st.integers(1, 2))):
            doc = _schema_aware(doc, _Draw(draw))
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            text = _mutate_text(text, _Draw(draw))
        else:
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and draw(st.booleans()):
                doc = _schema_aware(doc, _Draw(draw))
            else:
                doc = _mutate_data(doc, _Draw(draw))
            text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    return text


class _Draw:
    """Lets the mutation helpers call ``data.draw`` inside a composite strategy."""

    def __init__(self, draw):
        self.draw = draw


def _check_errors(errors, path):
    assert isinstance(errors, list)
    for error in errors:
        assert isinstance(error, SpecError), error
        assert error.line >= 0 and error.col >= 0, error.format()
        assert error.file == str(path), error.format()
        assert error.message and "\n" not in error.message, error.format()


def _validate_everywhere(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _check_errors(graphspec.validate(str(path)), path)
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code in (0, 1), result.output
        assert "Traceback" not in result.output and "internal error" not in result.output, \
            result.output


@FUZZ
@given(mutated_specs())
def test_fuzz_mutated_reference_specs_never_crash_validate(text):
    _validate_everywhere(text)


@FUZZ
@given(mutated_specs(schema_aware_only=True))
def test_fuzz_schema_aware_mutations_never_crash_the_compiler(text):
    _validate_everywhere(text)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(
    lambda b: b.decode("latin-1")), VALUES.map(lambda v: yaml.safe_dump(v))))
def test_fuzz_random_documents_never_crash_validate(text):
    _validate_everywhere(text)
