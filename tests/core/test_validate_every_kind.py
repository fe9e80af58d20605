"""`validate` reports the schema errors AND the reference/shape errors of the parts that
pass the schema, in one run (issue 16: a user fixes a file in one round)."""
import graphspec

SPEC = """\
graphspec: 1
layers:
  dense_1: {type: Dense, units: -3}
  dense_2: {type: Dense, units: 4}
  out: {type: Dense, units: 2}
models:
  m:
    inputs:
      x: {shape: [3]}
    calls:
      - {layer: dense_2, in: x, out: h}
      - {layer: out, in: hh, out: y}
    outputs: [y]
  n:
    inputs:
      x: {shape: [3]}
    calls:
      - {layer: dense_1, in: x, out: h}
    outputs: [h]
"""


def test_schema_and_reference_errors_come_together_in_line_order(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(SPEC)
    errors = graphspec.validate(path)
    assert [(e.line, e.path) for e in errors] == [
        (3, "layers.dense_1.units"),          # the schema error
        (12, "models.m.calls[1].in"),         # a reference error in a schema-valid model
    ]
    assert "did you mean 'h'" in errors[1].message
    # model n uses the layer that failed the schema: no second error echoes it


def test_a_file_whose_top_level_fails_the_schema_reports_only_that(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("graphspec: 1\nlayers: [1, 2]\nmodels: {}\n")
    errors = graphspec.validate(path)
    assert errors and all(e.path.startswith(("layers", "models")) for e in errors)
