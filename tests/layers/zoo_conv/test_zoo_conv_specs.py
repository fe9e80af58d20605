"""The shipped specs that show the convolution zoo: each trained on a small generated task
to a stated score, and checked against Keras (same weights, same numbers)."""
import numpy as np
import pytest
from gradcheck import check_model_gradients
from specs_util import SPECS

import graphspec


def gratings(n, seed, size=16, classes=4):
    """Sinusoidal gratings in 3 channels at one of ``classes`` orientations (the label),
    random frequency and phase, plus noise: orientation is what a depthwise 3x3
    convolution can see and a global average alone cannot."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    angle = label * np.pi / classes + rng.normal(0, 0.05, n)
    freq = rng.uniform(0.6, 1.2, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    proj = (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy)
    image = np.sin(freq[:, None, None] * proj + phase[:, None, None])
    image = image[..., None] * rng.uniform(0.5, 1.0, (n, 1, 1, 3))
    image += rng.normal(0, 0.3, image.shape)
    return {"image": image.astype(np.float32), "probs": label}


def test_mobilenet_block_learns_orientation():
    """Stated score: test accuracy at least 0.9 on 4 orientations (chance 0.25) after 3
    epochs on 400 images (measured: 1.0, loss 2.5e-4)."""
    graph = graphspec.load(SPECS / "mobilenet_block.yaml", seed=0)
    model = graph.model()
    train, test = gratings(400, 0), gratings(300, 1)
    before = model.evaluate(test)
    model.fit(train, epochs=3, batch_size=32, seed=0, verbose=False)
    after = model.evaluate(test)
    assert before["accuracy"] < 0.45
    assert after["accuracy"] >= 0.9, after
    assert after["loss"] < before["loss"] - 0.8


def shapes(n, seed, size=16):
    """Images of one or two bright rectangles on a dark background."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 1), dtype=np.float32)
    for image in images:
        for _ in range(rng.integers(1, 3)):
            top, left = rng.integers(0, size - 4, 2)
            h, w = rng.integers(3, 9, 2)
            image[top:top + h, left:left + w] = rng.uniform(0.5, 1.0)
    return images


def test_conv_autoencoder_reconstructs_rectangles():
    """Stated score: test mean squared error below 0.01 after 6 epochs on 400 images
    (measured 0.0076; predicting the mean training image scores above 0.05)."""
    graph = graphspec.load(SPECS / "conv_autoencoder.yaml", seed=0)
    model = graph.model()
    train, test = shapes(400, 0), shapes(200, 1)
    baseline = float(np.mean((test - train.mean(axis=0)) ** 2))
    model.fit({"image": train, "restored": train}, epochs=6, batch_size=32, seed=0,
              verbose=False)
    loss = model.evaluate({"image": test, "restored": test})["loss"]
    assert baseline > 0.05
    assert loss < 0.01, (loss, baseline)


@pytest.mark.parametrize("spec", ["mobilenet_block", "conv_autoencoder"])
def test_spec_gradients_match_finite_differences(spec):
    graph = graphspec.load(SPECS / f"{spec}.yaml", seed=0, dtype="float64",
                           params={"image_size": 8})
    model = graph.model()
    x = np.random.default_rng(0).standard_normal((2,) + tuple(model.inputs[0].shape[1:]))
    check_model_gradients(model, {"image": x}, max_entries=6, jitter=0.05)


def keras_mobilenet_block(keras, size=16):
    """The same network written in Keras, layer names as in the spec."""
    L = keras.layers
    image = keras.Input((size, size, 3), dtype="float64")
    kw = {"dtype": "float64"}
    stem = L.ReLU(max_value=6, name="stem_relu6", **kw)(L.Conv2D(
        16, 3, strides=2, padding="same", use_bias=False, name="stem", **kw)(image))
    x = L.Conv2D(32, 1, activation="relu6", name="expand", **kw)(stem)
    x = L.ReLU(max_value=6, name="depthwise_relu6", **kw)(L.DepthwiseConv2D(
        3, padding="same", name="depthwise", **kw)(x))
    gate = L.GlobalAveragePooling2D(keepdims=True, name="se_squeeze", **kw)(x)
    gate = L.Conv2D(8, 1, activation="relu", name="se_reduce", **kw)(gate)
    gate = L.Conv2D(32, 1, activation="hard_sigmoid", name="se_expand", **kw)(gate)
    x = L.Multiply(name="se_excite", **kw)([x, gate])
    x = L.Add(name="residual", **kw)([stem, L.Conv2D(16, 1, name="project", **kw)(x)])
    x = L.SeparableConv2D(32, 3, strides=2, padding="same", activation="relu6",
                          name="separable", **kw)(x)
    x = L.GlobalAveragePooling2D(name="pool", **kw)(x)
    probs = L.Dense(4, activation="softmax", name="classifier", **kw)(x)
    return keras.Model(image, probs)


def test_mobilenet_block_agrees_with_keras(keras):
    """Same weights (trained a little, so nothing sits at its initial value) -> the same
    class probabilities as Keras' predict, in float64."""
    graph = graphspec.load(SPECS / "mobilenet_block.yaml", seed=0, dtype="float64")
    model = graph.model()
    model.fit(gratings(64, 0), epochs=1, batch_size=32, seed=0, verbose=False)
    reference = keras_mobilenet_block(keras)
    for layer in reference.layers:
        ours = graph.layers.get(layer.name)
        for var in layer.weights:
            var.assign(ours.weights[var.name].data)
    x = gratings(8, 3)["image"].astype(np.float64)
    want = np.asarray(reference.predict(x, verbose=0))
    got = model.predict(x)["probs"]
    # Keras' torch-backend mean (the two average pools) runs in float32 even on float64
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
