"""The converter tables cover the layer registry and the expression functions; what
cannot be exported is refused up front with one located line; the export command."""
import os

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import MLP, SPECS, write_spec

import graphspec
from graphspec.errors import InputError, SpecError
from graphspec.expr import FUNCTIONS
from graphspec.interop import onnx_export
from graphspec.interop.onnx_check import run_onnxruntime
from graphspec.interop.onnx_export import to_onnx
from graphspec.interop.onnx_functions import FUNCTION_REFUSALS
from graphspec.interop.onnx_functions import FUNCTIONS as FUNCTION_CONVERTERS
from graphspec.interop.onnx_layers import LAYER_CONVERTERS, LAYER_REFUSALS
from graphspec.layers.registry import REGISTRY

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_every_layer_type_exports_or_says_why_not():
    for kind in REGISTRY:
        assert (kind in LAYER_CONVERTERS) != (kind in LAYER_REFUSALS), kind
        assert kind not in LAYER_REFUSALS or len(LAYER_REFUSALS[kind]) > 20, kind
    assert set(LAYER_CONVERTERS) | set(LAYER_REFUSALS) == set(REGISTRY)


def test_every_expression_function_exports_or_says_why_not():
    for name in FUNCTIONS:
        assert (name in FUNCTION_CONVERTERS) != (name in FUNCTION_REFUSALS), name
    assert set(FUNCTION_CONVERTERS) | set(FUNCTION_REFUSALS) == set(FUNCTIONS)


def test_what_is_not_exportable():
    """Every layer type and every function exports; what is refused is configurations
    (tests below): the list the README shows."""
    assert LAYER_REFUSALS == {} and FUNCTION_REFUSALS == {}


SELU_LSTM = """
graphspec: 1
layers:
  enc: {type: LSTM, units: 3, activation: selu}
models:
  inner:
    inputs:
      seq: {shape: [null, 2]}
    calls:
      - {layer: enc, in: seq, out: code}
    outputs: [code]
  outer:
    inputs:
      x: {shape: [null, 2]}
    calls:
      - {layer: {type: Dense, units: 2, name: pre}, in: x, out: h}
      - {layer: inner, in: h, out: y}
    outputs: [y]
"""


def test_refusal_names_the_layer_and_its_line(tmp_path):
    path = write_spec(tmp_path, SELU_LSTM.replace("activation: selu", "stateful: true"))
    graph = graphspec.load(path, seed=0)
    target = tmp_path / "out.onnx"
    with pytest.raises(SpecError) as info:
        to_onnx(graph.models["outer"], path=target)
    assert str(info.value) == (
        f"{path}:9:9: models.inner.calls[0]: LSTM layer 'enc' cannot be exported to ONNX: "
        "it is stateful: its final state becomes the next batch's initial state, and an "
        "ONNX graph holds no state from one run to the next")
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


@pytest.mark.parametrize("expr, message", [
    ("x[:, [0, 1], 0]", "indexing with an integer list together with integers, None or "
                        "other lists has no ONNX translation here"),
    ("x[:, :batch]", "a slice bound depends on the batch size at run time"),
])
def test_expression_construct_refusals_are_located(tmp_path, expr, message):
    text = f"""
    graphspec: 1
    models:
      m:
        inputs:
          x: {{shape: [3, 4]}}
        calls:
          - {{layer: {{type: Lambda, name: pick, expr: "{expr}"}}, in: x, out: y}}
        outputs: [y]
    """
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as info:
        to_onnx(graphspec.load(path, seed=0).model())
    assert str(info.value).startswith(
        f"{path}:7:9: models.m.calls[0]: Lambda layer 'pick' cannot be exported to ONNX: "
        f"expr: {message}")


def test_unknown_per_step_size_in_time_distributed_is_refused(tmp_path):
    text = """
    graphspec: 1
    models:
      m:
        inputs:
          x: {shape: [3, null, 2]}
        calls:
          - {layer: {type: TimeDistributed, name: td, layer: {type: Dense, units: 2}},
             in: x, out: y}
        outputs: [y]
    """
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError, match=r":7:9: models.m.calls\[0\]: TimeDistributed layer "
                                        r"'td' cannot be exported to ONNX: the per-step"):
        to_onnx(graphspec.load(path, seed=0).model())


def test_missing_onnx_package_is_one_line(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(InputError) as info:
        onnx_export.export_onnx(graphspec.loads(MLP, seed=0), "unused.onnx")
    assert str(info.value) == ("graphspec export --format onnx needs the onnx extra: "
                               "pip install 'graphspec[onnx]'")


def test_opset_out_of_range_is_refused():
    with pytest.raises(InputError, match="opset 9 is not supported; choose 13..21"):
        to_onnx(graphspec.loads(MLP, seed=0).model(), opset=9)


# -- the command ------------------------------------------------------------------------
def _export():
    from graphspec.cli.export_commands import export
    return export


def _weights(tmp_path, spec, params=None):
    graph = graphspec.load(spec, seed=3, params=params)
    path = tmp_path / "w.npz"
    graph.save_weights(path)
    return graph, path


def test_export_command_writes_a_model_that_agrees(tmp_path):
    spec = write_spec(tmp_path, MLP)
    graph, weights = _weights(tmp_path, spec)
    out = tmp_path / "mlp.onnx"
    result = CliRunner().invoke(_export(), [str(spec), "--weights", str(weights),
                                            "--format", "onnx", "-o", str(out), "--check", "5"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (model 'mlp', onnx)" in result.output
    assert "on 5 random rows" in result.output and ": ok" in result.output
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    got = run_onnxruntime(onnx.load(out), {"x": x})["probs"]
    np.testing.assert_allclose(got, graph.model().predict(x)["probs"], rtol=1e-5, atol=1e-6)


def test_export_without_model_writes_one_file_per_model(tmp_path):
    _, weights = _weights(tmp_path, SPECS / "vae.yaml")
    result = CliRunner().invoke(_export(), [str(SPECS / "vae.yaml"), "--weights", str(weights),
                                            "--format", "onnx", "-o", str(tmp_path / "v.onnx"),
                                            "--opset", "18", "--check", "3"])
    assert result.exit_code == 0, result.output
    assert "v.vae.onnx: not compared: model 'vae' draws random noise" in result.output
    assert "v.decoder.onnx: onnxruntime vs predict on 3 random rows" in result.output
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".onnx")) == \
        ["v.decoder.onnx", "v.vae.onnx"]
    decoder = onnx.load(tmp_path / "v.decoder.onnx")
    assert decoder.opset_import[0].version == 18 and decoder.graph.input[0].name == "latent"
    one = CliRunner().invoke(_export(), [str(SPECS / "vae.yaml"), "--weights", str(weights),
                                         "--format", "onnx", "--model", "decoder",
                                         "-o", str(tmp_path / "d.onnx")])
    assert one.exit_code == 0 and os.path.exists(tmp_path / "d.onnx"), one.output


def test_export_refusal_is_one_line_and_writes_nothing(tmp_path):
    spec = write_spec(tmp_path, SELU_LSTM.replace("activation: selu", "stateful: true"))
    _, weights = _weights(tmp_path, spec)
    result = CliRunner().invoke(_export(), [str(spec), "--model", "outer", "--weights",
                                            str(weights), "--format", "onnx",
                                            "-o", str(tmp_path / "o.onnx")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "LSTM layer 'enc' cannot be exported to ONNX" in lines[0]
    assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml", "w.npz"]


def test_export_refuses_to_overwrite_its_inputs(tmp_path):
    spec = write_spec(tmp_path, MLP)
    _, weights = _weights(tmp_path, spec)
    before = weights.read_bytes()
    for target in (weights, spec):
        result = CliRunner().invoke(_export(), [str(spec), "--weights", str(weights),
                                                "--format", "onnx", "-o", str(target)])
        assert result.exit_code == 2 and "name the same file" in result.output, result.output
    assert weights.read_bytes() == before


def test_export_help_has_examples_and_the_per_model_rule():
    result = CliRunner().invoke(_export(), ["--help"])
    assert result.exit_code == 0
    assert "out.MODEL.onnx" in result.output
    assert result.output.count("graphspec export specs/") >= 3


def test_weights_over_the_protobuf_limit_are_refused(monkeypatch):
    from graphspec.interop import onnx_builder
    monkeypatch.setattr(onnx_builder, "MAX_PROTO_BYTES", 100)
    with pytest.raises(InputError, match=r"model 'mlp' holds 0.0 GiB of weights; one ONNX "
                                         r"file holds less than 2 GiB"):
        to_onnx(graphspec.loads(MLP, seed=0).model())


def test_only_the_exported_models_calls_are_checked(tmp_path):
    """td folds time into the batch, which needs every per-step size: `inner` calls it
    on steps of unknown size and is refused, `fixed` on known ones and exports."""
    text = """
graphspec: 1
layers:
  td: {type: TimeDistributed, layer: {type: GlobalAveragePooling1D}}
models:
  inner:
    inputs: {seq: {shape: [4, null, 2]}}
    calls:
      - {layer: td, in: seq, out: flat}
    outputs: [flat]
  fixed:
    inputs: {s: {shape: [4, 3, 2]}}
    calls:
      - {layer: td, in: s, out: f}
    outputs: [f]
"""
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    to_onnx(graph.models["fixed"])
    with pytest.raises(SpecError, match=r"calls\[0\]: TimeDistributed layer 'td' cannot be "
                                        r"exported to ONNX: the per-step shape"):
        to_onnx(graph.models["inner"])


def test_recurrences_of_unknown_length_run_as_an_onnx_scan(tmp_path):
    """An activation ONNX's recurrent nodes lack (selu): unrolled over known steps,
    one Scan over time when the length is known only at run time; both as predict."""
    text = SELU_LSTM + """
  fixed:
    inputs:
      s: {shape: [4, 2]}
    calls:
      - {layer: enc, in: s, out: e}
    outputs: [e]
"""
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    x = np.random.default_rng(0).standard_normal((3, 4, 2)).astype("float32")
    for name, key, scan in (("fixed", "s", False), ("inner", "seq", True)):
        model = graph.models[name]
        proto = to_onnx(model)
        assert ("Scan" in {n.op_type for n in proto.graph.node}) is scan
        assert "LSTM" not in {n.op_type for n in proto.graph.node}
        got = run_onnxruntime(proto, {key: x})[model.output_names[0]]
        np.testing.assert_allclose(got, model.predict({key: x})[model.output_names[0]],
                                   rtol=1e-5, atol=1e-6)


