"""SpatialDropout1D/2D, GaussianNoise, GaussianDropout: the identity at inference (as in
Keras and ONNX), seeded through the run's generator while training, with Keras'
statistics (whole channels dropped and the rest scaled by 1/(1-rate); N(0, stddev)
added; N(1, sqrt(rate/(1-rate))) multiplied), gradients by finite differences under a
fixed seed, and a training step through the real trainer."""
import numpy as np
import pytest
from gradcheck import check_gradients

import graphspec
from graphspec.autodiff import Variable
from graphspec.errors import ShapeError
from graphspec.layers.base import CallContext
from graphspec.layers.registry import REGISTRY

CASES = [("SpatialDropout1D", {"rate": 0.4}, (6, 50)),
         ("SpatialDropout2D", {"rate": 0.3}, (3, 4, 50)),
         ("GaussianNoise", {"stddev": 0.7}, (40, 50)),
         ("GaussianDropout", {"rate": 0.2}, (40, 50))]


def layer_for(kind, config, shape):
    layer = REGISTRY[kind]("noise", config)
    assert layer.compute_output_shapes([(None,) + shape]) == [(None,) + shape]
    return layer


def run(layer, x, training, seed=0):
    ctx = CallContext(training=training, rng=np.random.default_rng(seed))
    return layer.forward([Variable(x)], ctx)[0].data


@pytest.mark.parametrize("kind, config, shape", CASES)
def test_identity_at_inference_and_seeded_in_training(kind, config, shape):
    layer = layer_for(kind, config, shape)
    x = np.random.default_rng(0).standard_normal((8,) + shape) + 3.0
    np.testing.assert_array_equal(run(layer, x, False), x)
    a, b, c = run(layer, x, True, 1), run(layer, x, True, 1), run(layer, x, True, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, x)
    zero = REGISTRY[kind]("noise", {k: 0.0 for k in config})
    np.testing.assert_array_equal(run(zero, x, True, 1), x)


@pytest.mark.parametrize("kind, config, shape", CASES[:2])
def test_spatial_dropout_drops_whole_channels(kind, config, shape):
    layer = layer_for(kind, config, shape)
    x = np.ones((200,) + shape)
    out = run(layer, x, True, 3)
    rate = config["rate"]
    per_channel = out.reshape(200, -1, shape[-1])
    # every step/pixel of one sample and channel shares the draw: 0 or 1/(1-rate)
    assert np.all(per_channel == per_channel[:, :1, :])
    assert set(np.unique(out).round(6)) == {0.0, round(1 / (1 - rate), 6)}
    dropped = float(np.mean(per_channel[:, 0, :] == 0))
    assert abs(dropped - rate) < 0.03


def test_gaussian_noise_and_dropout_statistics():
    x = np.full((400, 500), 2.0)
    added = run(layer_for("GaussianNoise", {"stddev": 0.7}, (500,)), x, True) - x
    assert abs(added.mean()) < 0.01 and abs(added.std() - 0.7) < 0.01
    factor = run(layer_for("GaussianDropout", {"rate": 0.2}, (500,)), x, True) / x
    assert abs(factor.mean() - 1) < 0.01 and abs(factor.std() - np.sqrt(0.2 / 0.8)) < 0.01


@pytest.mark.parametrize("kind, config, shape", CASES)
def test_training_gradients_by_finite_differences(kind, config, shape):
    layer = layer_for(kind, config, shape[:1] + (3,) if len(shape) == 2 else (2, 2, 3))
    small = shape[:1] + (3,) if len(shape) == 2 else (2, 2, 3)

    def fn(x):    # a fresh generator with the same seed: the same noise every call
        return layer.forward([x], CallContext(training=True, rng=np.random.default_rng(7)))[0]
    check_gradients(fn, np.random.default_rng(0).standard_normal((3,) + small))


def test_rank_errors_and_keras_data_format():
    with pytest.raises(ShapeError, match="SpatialDropout1D layer 'noise' needs inputs of rank "
                                         "3 \\(batch included\\), got shape \\(None, 4\\)"):
        REGISTRY["SpatialDropout1D"]("noise", {"rate": 0.5}).compute_output_shapes([(None, 4)])
    with pytest.raises(ShapeError, match="rank 4"):
        REGISTRY["SpatialDropout2D"]("noise", {"rate": 0.5}).compute_output_shapes(
            [(None, 4, 3)])
    assert REGISTRY["SpatialDropout2D"]("n", {"rate": 0.5}).config["data_format"] == \
        "channels_last"


def test_a_training_step_uses_the_noise_and_predict_does_not():
    spec = """
graphspec: 1
models:
  m:
    inputs:
      x: {shape: [5, 4]}
    calls:
      - {layer: {type: GaussianNoise, name: noise, stddev: 0.5}, in: x, out: n}
      - {layer: {type: SpatialDropout1D, name: drop, rate: 0.5}, in: n, out: d}
      - {layer: {type: GaussianDropout, name: gd, rate: 0.3}, in: d, out: g}
      - {layer: {type: Dense, name: out, units: 1}, in: g, out: y}
    outputs: [y]
training:
  default: {model: m, loss: mse, optimizer: sgd}
"""
    graph = graphspec.loads(spec, seed=0)
    x = np.random.default_rng(0).standard_normal((16, 5, 4)).astype(np.float32)
    before = graph.model().predict(x)["y"]
    kernel = graph.layers["out"].weights["kernel"].data.copy()
    np.testing.assert_allclose(before, x @ kernel + graph.layers["out"].weights["bias"].data,
                               rtol=1e-5, atol=1e-6)
    # the noise-free prediction as target: a step moves the weights only through noise
    graph.trainer().fit({"x": x, "y": before}, epochs=1, batch_size=16, verbose=0)
    assert not np.allclose(graph.layers["out"].weights["kernel"].data, kernel, atol=1e-4)
