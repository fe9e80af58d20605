"""Regressions from hardening and fuzzing: each test is one thing that used to go wrong.

- A mapping key holding a newline forged a second ``FILE:LINE:COL`` line (or a GitHub
  ``::error`` annotation) in ``validate``'s report (found by ``test_fuzz.py``).
- A double-quoted ``"\\U16777216"`` crashed PyYAML's scanner with a bare ValueError
  (found by ``test_fuzz.py``).
- ``oneOf`` errors picked the wrong branch: ``loss: msee`` said "expected object".
- ``training:`` jobs were only checked at train time: ``validate`` now checks them
  from the spec alone (the CLI's ``validate`` should call it; see the xfail in
  ``test_hostile_inputs.py``).
- Atomic writes left outputs with mode 0600 (``mkstemp``'s) instead of the usual one.
"""
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import MLP, SPECS, write_spec

from graphspec.cli import main
from graphspec.io import files
from graphspec.spec.loader import load_text, one_line
import graphspec
from graphspec.spec.validate import schema_errors


def _validate(*args):
    result = CliRunner().invoke(main, ["validate", *map(str, args)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


# -- messages are one line each, whatever the spec holds -----------------------------------
def test_a_key_with_a_newline_cannot_forge_report_lines(tmp_path):
    spec = write_spec(tmp_path, '"a\\n/etc/passwd:1:1: forged\\n::error file=x::forged": 1\n'
                                + MLP)
    for fmt in ("text", "github", "json"):
        output = _validate("--format", fmt, spec)
        lines = output.splitlines()
        assert not any(line.startswith(("/etc/passwd", "::error file=x")) for line in lines)
        assert "\\n/etc/passwd:1:1: forged" in output


def test_invisible_and_bidi_characters_are_escaped_in_messages(tmp_path):
    spec = write_spec(tmp_path, MLP.replace("dense_1", "dense\u202e_1\u200b"))
    output = _validate(spec)
    assert "\u202e" not in output and "\\u202e" in output


def test_one_line_leaves_printable_text_alone():
    assert one_line("Dense layer 'é' (None, 4)") == "Dense layer 'é' (None, 4)"
    assert one_line("a\r\nb\tc\x00") == "a\\r\\nb\\tc\\x00"


def test_yaml_escape_beyond_unicode_is_a_located_error(tmp_path):
    # Found by test_fuzz.py: PyYAML's scanner calls chr(0x16777216) -> ValueError.
    spec = write_spec(tmp_path, 'graphspec: 1\ndescription: "\\U16777216"\n')
    output = _validate(spec)
    assert f"{spec}:2:" in output
    assert "invalid YAML: an escape names a character beyond U+10FFFF" in output


# -- schema messages point at the branch that was meant ------------------------------------
@pytest.mark.parametrize("job,message", [
    ("loss: msee", "training.j.loss: unknown value 'msee'; did you mean 'mse'?"),
    ("loss: {name: msee}", "training.j.loss.name: unknown name 'msee'; did you mean 'mse'?"),
    ("loss: {name: mse, foo: 1}", "training.j.loss.foo: unknown key 'foo' (allowed: name)"),
    ("loss: 5", "training.j.loss: expected string or object, got integer 5"),
    ("loss: mse\n    optimizer: {type: adam, momentum: 3}",
     "training.j.optimizer.momentum: unknown key 'momentum' for adam optimizer"),
    ("loss: mse\n    optimizer: {type: adamm}",
     "training.j.optimizer.type: unknown type 'adamm'; did you mean 'adam'?"),
    ("loss: mse\n    optimizer: {learning_rate: 1}",
     "training.j.optimizer: missing required key 'type'"),
    ("loss: mse\n    optimizer: {type: sgd, momentum: 3}",
     "training.j.optimizer.momentum: 3 is greater than the maximum of 1"),
])
def test_one_of_errors_describe_the_intended_branch(job, message):
    located = load_text(MLP + f"training:\n  j:\n    model: mlp\n    {job}\n", "s.yaml")
    errors = [e.format() for e in schema_errors(located)]
    assert any(message in e for e in errors), errors


def test_huge_numbers_are_shortened_but_the_problem_stays_visible():
    located = load_text(MLP.replace("units: 8", "units: " + "9" * 300), "s.yaml")
    (error,) = schema_errors(located)
    assert error.message.endswith("... is greater than the maximum of 16777216")
    assert len(error.message) < 120


def test_integral_floats_are_not_integers():
    located = load_text(MLP.replace("[4]", "[4.0]"), "s.yaml")
    (error,) = schema_errors(located)
    assert error.path == "models.mlp.inputs.x.shape[0]"
    assert error.message == "expected integer or null, got number 4.0"


# -- training jobs, checked from the spec alone --------------------------------------------
def _training_errors(job, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MLP + f"training:\n  j:\n    model: mlp\n    {job}\n")
    return [e.format() for e in graphspec.validate(path)]


@pytest.mark.parametrize("job,message", [
    ('loss: {expr: "mean(y_pred.__class__, axis=-1)"}',
     "s.yaml:17:18: training.j.loss.expr: attribute access (.__class__) is not allowed"),
    ('loss: {expr: "__import__(\'os\')"}', "function '__import__' is not allowed"),
    ('loss: mse\n    terms: {t: "[v for v in probs]"}', "training.j.terms.t: comprehensions"),
    ('loss: mse\n    added_losses: ["mean(hh)"]',
     "training.j.added_losses[0]: name 'hh' is not allowed here (did you mean 'h'?)"),
    ('loss: mse\n    state: {k: {initial: 0, update: "k + h"}}',
     "training.j.state.k.update: name 'h' is not allowed here"),
    ("loss: {probz: mse}", "training.j.loss.probz: loss for 'probz', which is not an output"),
    ("loss: mse\n    loss_weights: {prob: 1}", "training.j.loss_weights.prob: loss weight"),
    ("loss: mse\n    metrics: [acuracy]", "training.j.metrics[0]: unknown metric 'acuracy'"),
    ("loss: mse\n    metrics: {probz: [mae]}", "training.j.metrics.probz: metrics for 'probz'"),
])
def test_training_errors_are_located(job, message, tmp_path):
    errors = _training_errors(job, tmp_path)
    assert any(message in e for e in errors), errors


def test_training_job_naming_an_unknown_model(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(MLP + "training:\n  j:\n    model: mpl\n    loss: mse\n")
    (error,) = graphspec.validate(path)
    assert error.format() == (f"{path}:16:12: training.j.model: model 'mpl' is not declared; "
                              "did you mean 'mlp'? (models: mlp)")


def test_terms_see_earlier_terms_and_state_like_the_trainer(tmp_path):
    assert _training_errors('loss: mse\n    terms: {a: "mean(probs)", b: "a * k"}\n'
                            '    state: {k: {initial: 0, update: "k + b"}}\n'
                            '    added_losses: ["a + b"]', tmp_path) == []
    errors = _training_errors('loss: mse\n    terms: {a: "b", b: "mean(probs)"}', tmp_path)
    assert len(errors) == 1 and "training.j.terms.a: name 'b'" in errors[0]


def test_every_reference_spec_has_clean_training_jobs():
    """Checking training jobs in ``validate`` refuses nothing that trains."""
    for path in sorted(SPECS.glob("*.yaml")):
        assert graphspec.validate(path) == [], path


# -- atomic writes keep ordinary permissions -------------------------------------------------
def test_atomic_write_keeps_the_old_mode_and_gives_new_files_the_umask_mode(tmp_path):
    existing = tmp_path / "w.npz"
    existing.write_bytes(b"old")
    os.chmod(existing, 0o640)
    files.save_npz(existing, {"a": np.zeros(2)})
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o640
    umask = os.umask(0o022)
    try:
        files.save_json(tmp_path / "h.json", {"loss": [1.0]})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "h.json").st_mode) == 0o644
