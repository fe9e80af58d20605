"""Every class of bad spec gets a located one-line error: FILE:LINE:COL: path: message."""
import pytest
from specs_util import MLP, write_spec

import graphspec


def errors_of(tmp_path, text):
    path = write_spec(tmp_path, text)
    return path, [e.format() for e in graphspec.validate(path)]


def test_valid_spec_has_no_errors(tmp_path):
    assert errors_of(tmp_path, MLP)[1] == []


def test_typo_in_layer_argument_names_file_line_and_column(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("units: 8,", "unitz: 8,"))
    assert f"{path}:3:26: layers.dense_1.unitz: unknown key 'unitz' for Dense layer; " \
           "did you mean 'units'?" in errors[-1]


def test_bad_yaml_is_located(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("outputs: [probs]", "outputs: [probs"))
    assert len(errors) == 1 and errors[0].startswith(f"{path}:") and "invalid YAML" in errors[0]


def test_unknown_layer_type_suggests_the_right_one(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("type: Dense, units: 8", "type: Dence, units: 8"))
    assert any(f"{path}:3:19: layers.dense_1.type: unknown layer type 'Dence'; did you mean "
               "'Dense'?" in e for e in errors)


def test_unknown_layer_reference(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("layer: out,", "layer: outt,"))
    assert errors == [f"{path}:11:17: models.mlp.calls[1].layer: unknown layer or model "
                      "'outt'; did you mean 'out'?"]


def test_tensor_used_before_it_exists(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("in: h,", "in: hh,"))
    assert errors == [f"{path}:11:26: models.mlp.calls[1].in: tensor 'hh' is used before it "
                      "is produced (calls run in order); did you mean 'h'?"]


def test_output_that_is_not_a_tensor(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("outputs: [probs]", "outputs: [prob]"))
    assert "models.mlp.outputs[0]: output 'prob' is not a tensor of model 'mlp'" in errors[0]


def test_shape_mismatch_is_found_by_shape_inference(tmp_path):
    spec = """
    graphspec: 1
    models:
      m:
        inputs:
          a: {shape: [4]}
          b: {shape: [5]}
        calls:
          - {layer: {type: Add}, in: [a, b], out: s}
        outputs: [s]
    """
    path, errors = errors_of(tmp_path, spec)
    assert errors == [f"{path}:8:9: models.m.calls[0]: Add layer 'add_1' cannot merge shapes "
                      "(None, 4), (None, 5): they must be equal"]


def test_shared_layer_called_on_incompatible_features(tmp_path):
    spec = """
    graphspec: 1
    layers:
      d: {type: Dense, units: 2}
    models:
      m:
        inputs:
          a: {shape: [4]}
          b: {shape: [5]}
        calls:
          - {layer: d, in: a, out: da}
          - {layer: d, in: b, out: db}
        outputs: [da, db]
    """
    path, errors = errors_of(tmp_path, spec)
    assert len(errors) == 1 and f"{path}:11:9: models.m.calls[1]:" in errors[0]
    assert "built with weight 'kernel' of shape (4, 2)" in errors[0]


def test_cycle_through_sub_models(tmp_path):
    spec = """
    graphspec: 1
    models:
      first:
        inputs: {x: {shape: [3]}}
        calls:
          - {layer: second, in: x, out: y}
        outputs: [y]
      second:
        inputs: {x: {shape: [3]}}
        calls:
          - {layer: first, in: x, out: y}
        outputs: [y]
    """
    path, errors = errors_of(tmp_path, spec)
    assert any("calls itself through sub-models (first -> second -> first)" in e
               for e in errors)
    assert all(e.startswith(f"{path}:") for e in errors)


def test_duplicate_names(tmp_path):
    dup_key = MLP.replace("  out: {type: Dense, units: 3", "  dense_1: {type: Dense, units: 3")
    path, errors = errors_of(tmp_path, dup_key)
    assert errors == [f"{path}:4:3: layers.dense_1: duplicate key 'dense_1' (the earlier value "
                      "would be silently lost)"]
    dup_tensor = MLP.replace("out: probs}", "out: h}").replace("[probs]", "[h]")
    path, errors = errors_of(tmp_path, dup_tensor)
    assert "tensor 'h' is already defined in model 'mlp'" in errors[0]
    clash = MLP.replace("models:\n  mlp:", "models:\n  dense_1:").replace("[probs]", "[probs]")
    path, errors = errors_of(tmp_path, clash)
    assert any("'dense_1' names both a layer and a model" in e for e in errors)


def test_several_errors_are_all_reported(tmp_path):
    text = MLP.replace("in: h,", "in: hh,").replace("outputs: [probs]", "outputs: [prob]")
    path, errors = errors_of(tmp_path, text)
    assert len(errors) == 2


def test_missing_version_and_unknown_top_level_key(tmp_path):
    path, errors = errors_of(tmp_path, MLP.replace("graphspec: 1", "graphspec: 2\nextra: 1"))
    assert any("graphspec: expected 1, got 2" in e for e in errors)
    assert any("unknown key 'extra'" in e for e in errors)


def test_python_yaml_tags_are_refused(tmp_path):
    marker = tmp_path / "MARKER"
    text = MLP + f"description: !!python/object/apply:os.system ['touch {marker}']\n"
    path, errors = errors_of(tmp_path, text)
    assert errors and "YAML tag" in errors[0] and "not allowed" in errors[0]
    assert not marker.exists()


def test_load_raises_spec_errors_with_every_problem(tmp_path):
    path = write_spec(tmp_path, MLP.replace("in: h,", "in: hh,"))
    with pytest.raises(graphspec.SpecErrors) as info:
        graphspec.load(path)
    assert "tensor 'hh'" in str(info.value)


def test_params_substitution_and_unknown_param(tmp_path):
    text = MLP.replace("graphspec: 1", "graphspec: 1\nparams: {width: 6}").replace(
        "units: 8,", 'units: "${width}",')
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    assert graph.weights()["dense_1/kernel"].shape == (4, 6)
    graph = graphspec.load(write_spec(tmp_path, text), seed=0, params={"width": 2})
    assert graph.weights()["dense_1/kernel"].shape == (4, 2)
    errors = graphspec.validate(write_spec(tmp_path, text.replace("${width}", "${widht}")))
    assert "unknown param 'widht'; did you mean 'width'?" in errors[0].format()


def test_deep_documents_never_reach_libyaml(tmp_path):
    """libyaml recurses without a limit: only shallow documents may go its way."""
    from graphspec.spec.loader import LIBYAML_MAX_DEPTH, _nesting_bound
    assert _nesting_bound("a: " + "[" * 100_000 + "]" * 100_000) >= 100_000
    assert _nesting_bound("a:\n" + "".join(" " * i + "- b:\n" for i in range(0, 400, 2))) \
        > LIBYAML_MAX_DEPTH
    assert _nesting_bound(MLP) < LIBYAML_MAX_DEPTH
    path = write_spec(tmp_path, "graphspec: 1\nmodels: " + "[" * 200_000 + "]" * 200_000)
    (error,) = graphspec.validate(path)
    assert "nesting deeper than" in error.format()
