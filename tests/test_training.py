"""Training behaviours of reference section C, each checked by what changes."""
import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import write_spec

import graphspec
from graphspec.cli import main
from graphspec.train.trainer import TrainingError

CONTAINER = """
graphspec: 1
layers:
  inner_dense: {type: Dense, units: 3, trainable: INNER}
  head: {type: Dense, units: 1}
models:
  encoder:
    trainable: OUTER
    inputs: {x: {shape: [4]}}
    calls:
      - {layer: inner_dense, in: x, out: h}
    outputs: [h]
  full:
    inputs: {features: {shape: [4]}}
    calls:
      - {layer: encoder, in: features, out: encoded}
      - {layer: head, in: encoded, out: y}
    outputs: [y]
training:
  default: {model: full, loss: mse, optimizer: sgd}
  frozen_head: {model: full, loss: mse, optimizer: sgd, freeze: [head]}
"""


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return {"features": rng.standard_normal((n, 4)).astype(np.float32),
            "y": rng.standard_normal((n, 1)).astype(np.float32)}


def changed_after_training(graph, job=None):
    before = {k: v.data.copy() for k, v in graph.weights().items()}
    graph.models["full"].fit(data(), job=job, epochs=1, batch_size=8, seed=0, verbose=False)
    return {k for k, v in graph.weights().items() if not np.array_equal(before[k], v.data)}


@pytest.mark.parametrize("outer, inner, inner_trained", [
    (True, True, True), (True, False, False), (False, True, False), (False, False, False)])
def test_trainable_and_semantics(tmp_path, outer, inner, inner_trained):
    text = CONTAINER.replace("OUTER", str(outer).lower()).replace("INNER", str(inner).lower())
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    changed = changed_after_training(graph)
    assert ("inner_dense/kernel" in changed) is inner_trained
    assert {"head/kernel", "head/bias"} <= changed        # the outer layer always trains


def test_freeze_list_applies_to_that_job_only(tmp_path):
    graph = graphspec.load(write_spec(tmp_path, CONTAINER.replace("OUTER", "true")
                                      .replace("INNER", "true")), seed=0)
    assert changed_after_training(graph, job="frozen_head") == {"inner_dense/kernel",
                                                                "inner_dense/bias"}
    graph.models["full"]._trainer = None
    assert "head/kernel" in changed_after_training(graph, job="default")


MULTI = """
graphspec: 1
layers:
  trunk: {type: Dense, units: 4, activation: tanh}
  main: {type: Dense, units: 1, activation: sigmoid}
  aux: {type: Dense, units: 1, activation: sigmoid}
models:
  two_heads:
    inputs: {x: {shape: [3]}}
    calls:
      - {layer: trunk, in: x, out: h}
      - {layer: main, in: h, out: main_output}
      - {layer: aux, in: h, out: aux_output}
    outputs: [main_output, aux_output]
training:
  by_name:
    model: two_heads
    loss: {main_output: binary_crossentropy, aux_output: mse}
    loss_weights: {main_output: 1.0, aux_output: 0.2}
    optimizer: {type: sgd, learning_rate: 0.01}
  one_for_all:
    model: two_heads
    loss: binary_crossentropy
    loss_weights: {main_output: 1.0, aux_output: 0.2}
    optimizer: {type: sgd, learning_rate: 0.01}
"""


def _bce(t, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))


@pytest.mark.parametrize("job", ["by_name", "one_for_all"])
def test_losses_per_output_and_loss_weights(tmp_path, job):
    graph = graphspec.load(write_spec(tmp_path, MULTI), seed=1, dtype="float64")
    model = graph.models["two_heads"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3))
    targets = {"main_output": rng.integers(0, 2, (8, 1)).astype(float),
               "aux_output": rng.integers(0, 2, (8, 1)).astype(float)}
    pred = model.predict(x)                      # the step logs the loss before updating
    logs = model.train_on_batch({"x": x}, targets, job=job)
    main = _bce(targets["main_output"], pred["main_output"])
    aux = _bce(targets["aux_output"], pred["aux_output"]) if job == "one_for_all" else \
        float(np.mean((targets["aux_output"] - pred["aux_output"]) ** 2))
    assert logs["main_output_loss"] == pytest.approx(main, rel=1e-9)
    assert logs["aux_output_loss"] == pytest.approx(aux, rel=1e-9)
    assert logs["loss"] == pytest.approx(main + 0.2 * aux, rel=1e-9)


def test_losses_by_name_must_cover_every_output(tmp_path):
    text = MULTI.replace("loss: {main_output: binary_crossentropy, aux_output: mse}",
                         "loss: {main_output: binary_crossentropy}")
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    with pytest.raises(graphspec.GraphspecError,
                       match=r"training.by_name.loss: losses are given by output name, but "
                             r"\['aux_output'\] of model 'two_heads' have none"):
        graph.models["two_heads"].trainer("by_name")


SIMPLE = """
graphspec: 1
layers:
  dense: {type: Dense, units: 2, kernel_regularizer: {l2: 0.5}}
models:
  m:
    inputs: {x: {shape: [3]}}
    calls:
      - {layer: dense, in: x, out: y}
    outputs: [y]
training:
  default:
    model: m
    loss: LOSS
    optimizer: {type: sgd, learning_rate: 0.01}
    added_losses: ADDED
"""


def test_regularizers_and_added_loss_terms_enter_the_loss(tmp_path):
    text = SIMPLE.replace("LOSS", "mse").replace("ADDED", '["0.1 * mean(square(y))"]')
    graph = graphspec.load(write_spec(tmp_path, text), seed=0, dtype="float64")
    model = graph.models["m"]
    x, t = np.ones((4, 3)), np.zeros((4, 2))
    pred = model.predict(x)["y"]
    kernel = graph.weights()["dense/kernel"].data
    expected = np.mean(pred ** 2) + 0.5 * np.sum(kernel ** 2) + 0.1 * np.mean(pred ** 2)
    assert model.train_on_batch(x, t)["loss"] == pytest.approx(expected, rel=1e-9)


def test_custom_per_sample_loss_expression(tmp_path):
    text = SIMPLE.replace("LOSS", '{expr: "mean(abs(y_true - y_pred), axis=1)"}').replace(
        "ADDED", "[]").replace(", kernel_regularizer: {l2: 0.5}", "")
    graph = graphspec.load(write_spec(tmp_path, text), seed=0, dtype="float64")
    model = graph.models["m"]
    x, t = np.ones((4, 3)), np.full((4, 2), 0.25)
    pred = model.predict(x)["y"]
    assert model.train_on_batch(x, t)["loss"] == pytest.approx(np.mean(np.abs(t - pred)))


def test_custom_loss_that_is_not_per_sample_is_refused(tmp_path):
    text = SIMPLE.replace("LOSS", '{expr: "mean(abs(y_true - y_pred))"}').replace("ADDED", "[]")
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    with pytest.raises(graphspec.GraphspecError, match="must return one value per sample"):
        graph.models["m"].trainer()


def test_nan_loss_stops_naming_epoch_and_batch_or_is_skipped(tmp_path):
    text = SIMPLE.replace("LOSS", "mse").replace("ADDED", "[]").replace(
        "learning_rate: 0.01", "learning_rate: 1.0e+30")
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    x = np.ones((8, 3), np.float32) * 1e3
    with pytest.raises(TrainingError, match=r"at epoch 1, batch 2"):
        graph.models["m"].fit(x, np.zeros((8, 2)), epochs=1, batch_size=4, seed=0,
                              verbose=False)
    graph = graphspec.load(write_spec(tmp_path, text), seed=0)
    history = graph.models["m"].fit(x, np.zeros((8, 2)), epochs=1, batch_size=4, seed=0,
                                    verbose=False, on_nan="skip")
    # The second batch is skipped: counted, and left out of the epoch's averages.
    assert history.history["skipped"] == [1.0]
    assert np.isfinite(history.history["loss"][0])
    assert history.epoch == [0]


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path):
    spec = write_spec(tmp_path, CONTAINER.replace("OUTER", "true").replace("INNER", "true")
                      .replace("optimizer: sgd}", "optimizer: adam}", 1))
    straight = graphspec.load(spec, seed=0)
    straight.models["full"].fit(data(40), epochs=4, batch_size=8, seed=7, verbose=False)
    first = graphspec.load(spec, seed=0)
    first.models["full"].fit(data(40), epochs=2, batch_size=8, seed=7, verbose=False,
                             checkpoint_dir=tmp_path / "ckpt")
    resumed = graphspec.load(spec, seed=123)          # different init: all comes from disk
    history = resumed.models["full"].fit(data(40), epochs=4, batch_size=8, seed=7,
                                         verbose=False, checkpoint_dir=tmp_path / "ckpt",
                                         resume=True)
    assert len(history["loss"]) == 4
    for key, var in straight.weights().items():
        np.testing.assert_array_equal(var.data, resumed.weights()[key].data)


def test_train_cli_end_to_end_on_digits(tmp_path):
    """make demo's path: >= 95 % test accuracy on scikit-learn's 8x8 digits."""
    pytest.importorskip("sklearn")
    from examples_digits import write_digits
    write_digits(tmp_path)
    runner = CliRunner()
    common = ["specs/mlp.yaml", "--set", "input_dim=64"]
    result = runner.invoke(main, ["train", *common, "--data", str(tmp_path / "digits_train.npz"),
                                  "--seed", "0", "-o", str(tmp_path / "w.npz"),
                                  "--history", str(tmp_path / "h.json")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["evaluate", *common, "--weights", str(tmp_path / "w.npz"),
                                  "--data", str(tmp_path / "digits_test.npz"), "--format",
                                  "json"])
    assert result.exit_code == 0, result.output
    import json
    scores = json.loads(result.output)
    assert scores["accuracy"] >= 0.95
