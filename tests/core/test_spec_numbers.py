"""YAML 1.2 numbers in specs and --set values (PyYAML alone reads 1e-3 as a string)."""
import pytest

import graphspec
from graphspec.errors import InputError
from graphspec.spec.loader import load_text, parse_scalar

SPEC = """
graphspec: 1
params: {rate: 0.5}
layers:
  d: {type: Dense, units: 2}
  drop: {type: Dropout, rate: "${rate}"}
models:
  m:
    inputs: {x: {shape: [2]}}
    calls:
      - {layer: d, in: x, out: h}
      - {layer: drop, in: h, out: y}
    outputs: [y]
training:
  job: {model: m, loss: mse, optimizer: {type: sgd, learning_rate: 3e-3, momentum: .5}}
"""


def test_exponent_floats_in_a_spec_are_numbers():
    assert graphspec.api._check(load_text(SPEC, "s.yaml"), None, "float32")[0] == []
    graph = graphspec.loads(SPEC, seed=0)
    config = graph.trainer("job").job.optimizer.get_config()
    assert config["learning_rate"] == pytest.approx(0.003) and config["momentum"] == 0.5


@pytest.mark.parametrize("text,value", [("1e-3", 0.001), ("1E5", 100000.0), (".5", 0.5),
                                        ("-2.5e+3", -2500.0), ("5E-1", 0.5), ("12", 12),
                                        ("true", True), ("relu", "relu"), ("1e3x", "1e3x")])
def test_parse_scalar_reads_yaml_1_2_numbers(text, value):
    got = parse_scalar(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["", "[1, 2]", "{a: 1}", "!!python/name:os.system x"])
def test_parse_scalar_refuses_what_is_not_one_scalar(text):
    with pytest.raises(InputError, match="must be a number, string or boolean"):
        parse_scalar(text)


def test_set_value_with_an_exponent_and_marks_kept():
    graph = graphspec.loads(SPEC, seed=0, params={"rate": parse_scalar("2.5E-1")})
    assert graph.layers["drop"].rate == 0.25
    located = load_text("a: 1\nb:\n  - 1e-3\n  - 2E+2\n", "f.yaml")
    assert located.data == {"a": 1, "b": [0.001, 200.0]}
    assert located.where(("b", 1)) == (4, 5)
    errors = graphspec.api._check(load_text(SPEC.replace("units: 2", "units: 2e0"), "s.yaml"),
                                  None, "float32")[0]
    assert errors and errors[0].line == 5 and "units" in errors[0].path
