"""The one walk over a model's layers: counts, training and regularizers agree."""
import numpy as np
import pytest

import graphspec
from graphspec.errors import SpecErrors
from graphspec.graph.walk import iter_layers

SPECS = __import__("pathlib").Path(__file__).resolve().parents[2] / "specs"


def test_frozen_sub_model_counts_follow_what_the_trainer_updates():
    graph = graphspec.load(SPECS / "container_trainable.yaml", seed=0,
                           params={"encoder_trainable": False})
    model = graph.models["regressor"]
    assert model.param_count() == (5, 16)       # head 4+1 trained; inner 12+4 frozen
    text = model.summary(print_fn=None)
    assert "Trainable params: 5" in text and "Non-trainable params: 16" in text
    trainer = graph.trainer("default")
    assert [key for key, _ in trainer.params] == ["head/kernel", "head/bias"]
    uses = {u.layer.name: u for u in iter_layers(model)}
    assert uses["inner"].trainable is False and uses["inner"].path == ("regressor", "encoder")
    assert uses["head"].trainable is True


def test_freeze_list_and_layer_flag_both_count():
    graph = graphspec.load(SPECS / "container_trainable.yaml", seed=0,
                           params={"inner_trainable": False})
    model = graph.models["regressor"]
    assert model.param_count() == (5, 16)
    assert model.param_count(freeze=["head"]) == (0, 21)
    assert graph.models["encoder"].param_count() == (0, 16)


def test_model_summary_prints_and_returns(capsys):
    graph = graphspec.load(SPECS / "container_trainable.yaml", seed=0)
    text = graph.models["regressor"].summary()
    assert capsys.readouterr().out.strip() == text.strip()
    assert "Trainable params: 21" in text


def test_shared_layer_frozen_along_one_path_is_frozen():
    graph = graphspec.loads("""
graphspec: 1
layers:
  shared: {type: Dense, units: 2}
models:
  enc:
    trainable: false
    inputs: {x: {shape: [2]}}
    calls: [{layer: shared, in: x, out: h}]
    outputs: [h]
  outer:
    inputs: {x: {shape: [2]}}
    calls:
      - {layer: shared, in: x, out: a}
      - {layer: enc, in: a, out: b}
    outputs: [b]
""", seed=0)
    uses = list(iter_layers(graph.models["outer"]))
    assert [u.layer.name for u in uses] == ["shared"]
    assert uses[0].trainable is False


RNN = """
graphspec: 1
layers:
  rnn: {type: TYPE, units: 3, recurrent_regularizer: {l2: 0.5}}
models:
  m:
    inputs: {x: {shape: [4, 2]}}
    calls: [{layer: rnn, in: x, out: y}]
    outputs: [y]
training:
  job: {model: m, loss: mse, optimizer: sgd}
"""


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_regularizer_penalises_recurrent_kernel(kind):
    with_reg = graphspec.loads(RNN.replace("TYPE", kind), seed=0)
    without = graphspec.loads(RNN.replace("TYPE", kind).replace(
        ", recurrent_regularizer: {l2: 0.5}", ""), seed=0)
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal((5, 4, 2)).astype(np.float32),
            "y": rng.standard_normal((5, 3)).astype(np.float32)}
    rk = with_reg.weights()["rnn/recurrent_kernel"].data.astype(np.float64)
    penalty = 0.5 * float((rk * rk).sum())
    assert penalty > 0.1
    got = with_reg.trainer("job").evaluate(data)["loss"]
    base = without.trainer("job").evaluate(data)["loss"]
    assert got == pytest.approx(base + penalty, rel=1e-5)


def test_activity_regularizer_inside_a_sub_model_is_applied():
    text = """
graphspec: 1
layers:
  inner: {type: Dense, units: 2, kernel_initializer: ones, activity_regularizer: {l1: 0.25}}
models:
  enc:
    inputs: {x: {shape: [2]}}
    calls: [{layer: inner, in: x, out: h}]
    outputs: [h]
  outer:
    inputs: {x: {shape: [2]}}
    calls: [{layer: enc, in: x, out: y}]
    outputs: [y]
training:
  job: {model: outer, loss: mse, optimizer: sgd}
"""
    graph = graphspec.loads(text, seed=0)
    x = np.array([[1.0, 2.0], [3.0, -4.0]], np.float32)
    y = np.zeros((2, 2), np.float32)
    out = x @ np.ones((2, 2))
    mse = float((out ** 2).mean())
    activity = 0.25 * float(np.abs(out).sum()) / 2     # Keras divides by the batch size
    assert graph.trainer("job").evaluate({"x": x, "y": y})["loss"] == \
        pytest.approx(mse + activity, rel=1e-6)


def test_regularizer_naming_no_weight_is_a_compile_error():
    with pytest.raises(SpecErrors, match="bias_regularizer is set, but the layer has no "
                                         "'bias' weight"):
        graphspec.loads("""
graphspec: 1
layers:
  d: {type: Dense, units: 2, use_bias: false, bias_regularizer: {l2: 0.1}}
models:
  m:
    inputs: {x: {shape: [2]}}
    calls: [{layer: d, in: x, out: y}]
    outputs: [y]
""")


def test_build_command_counts_what_the_trainer_updates():
    from click.testing import CliRunner

    from graphspec.cli import main
    result = CliRunner().invoke(main, ["build", str(SPECS / "container_trainable.yaml"),
                                       "--set", "encoder_trainable=false"])
    assert result.exit_code == 0, result.output
    regressor = result.output[result.output.index('Model: "regressor"'):]
    assert "Trainable params: 5\n" in regressor
    assert "Non-trainable params: 16" in regressor
