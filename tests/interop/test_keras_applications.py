"""keras.applications architectures, built offline (weights=None) at a small input they
accept, with non-trivial batch-norm moving statistics, saved as .keras, imported and
compared with Keras' predict; and two text models written in Keras. The agreement is
measured relative to the largest output (float32) and printed in the session report."""
import time

import numpy as np
import pytest
from conftest import AGREEMENT

from graphspec import api
from graphspec.errors import InputError
from graphspec.interop.keras_import import import_keras

REL_TOL = 1e-4
SIZE = (32, 32, 3)      # the smallest input every one of the five accepts


def applications(keras):
    k, kw = keras.applications, dict(weights=None, input_shape=SIZE, classes=10,
                                     classifier_activation=None)   # logits: a sharper check
    return {
        "ResNet50": lambda: k.ResNet50(**kw),
        "DenseNet121": lambda: k.DenseNet121(**kw),
        "MobileNetV2": lambda: k.MobileNetV2(alpha=0.35, **kw),
        # include_preprocessing as Keras ships it (a Rescaling layer); hard_sigmoid is
        # written x + 3 and * (1/6) on tensors: Keras operations, imported as expressions
        "MobileNetV3Small": lambda: k.MobileNetV3Small(**kw),
        # Rescaling and Normalization in the model; squeeze-and-excite with keepdims
        "EfficientNetB0": lambda: k.EfficientNetB0(**kw),
    }


def with_moving_statistics(keras, model, calibration, seed=1):
    """Non-trivial moving statistics in every BatchNormalization: those of one
    training-mode pass over ``calibration`` images (momentum 0), then moved off them:
    moving_mean + N(0, 0.1) * std and moving_variance * U(0.9, 1.1).

    Why not moving_mean ~ N(0, 0.1), moving_variance ~ U(0.5, 1.5) outright: with random
    (glorot) kernels the activations then vanish or saturate through 50+ layers, and the
    output is the same for every input (its standard deviation over inputs ~1e-8 in
    MobileNetV2/V3, 6e-6 in EfficientNetB0): a vacuous comparison. And why not
    moving_variance * U(0.5, 1.5): EfficientNetB0 (swish, squeeze-and-excite gates,
    residual sums) then amplifies float32 rounding a million-fold: Keras' own float32 and
    float64 predictions differ by 2.5e-4 relative (0.1 with 64 calibration images), more
    than the tolerance, so no float32 implementation could be checked against it."""
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 10
    for layer in norms:
        layer.momentum = 0.0
    model(calibration, training=True)
    for layer in norms:
        weights = layer.get_weights()
        std = np.sqrt(weights[-1])
        weights[-2] = weights[-2] + rng.normal(0, 0.1, std.shape) * std
        weights[-1] = weights[-1] * rng.uniform(0.9, 1.1, std.shape)
        layer.set_weights(weights)
    return model


def import_and_compare(keras, model, path, feeds, label):
    """Save, import, predict with both; the largest |difference| relative to the largest
    |Keras output|, asserted below REL_TOL and recorded for the session report."""
    model.save(path)
    result = import_keras(str(path))
    graph = api.loads(result.text, seed=0, name=str(path))
    graph.set_weights(result.weights)
    top = graph.model(result.renamed.get(model.name, model.name))
    want = model.predict(feeds[0] if len(feeds) == 1 else feeds, verbose=0)
    start = time.perf_counter()
    got = top.predict(dict(zip(top.input_names, feeds)))
    ours = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(feeds[0] if len(feeds) == 1 else feeds, verbose=0)
    theirs = time.perf_counter() - start
    want = want if isinstance(want, list) else [want]
    worst = worst_rel = 0.0
    for w, name in zip(want, top.output_names):
        w = np.asarray(w, np.float64)
        err = float(np.abs(np.asarray(got[name], np.float64) - w).max())
        worst, worst_rel = max(worst, err), max(worst_rel, err / float(np.abs(w).max()))
    AGREEMENT[f"{label} (predict {ours / theirs:.2f}x Keras' time)"] = (worst, worst_rel)
    assert worst_rel < REL_TOL, f"{label}: max |diff| {worst:.3e}, relative {worst_rel:.3e}"
    return graph, result


@pytest.mark.parametrize("name", ["ResNet50", "DenseNet121", "MobileNetV2",
                                  "MobileNetV3Small", "EfficientNetB0"])
def test_keras_application_imports_and_agrees(keras, keras_dir, name):
    keras.utils.set_random_seed(0)
    # MobileNetV2 expects inputs in [-1, 1]; the others include their preprocessing
    # (Rescaling, Normalization) or take 0..255 images
    low, high = (-1, 1) if name == "MobileNetV2" else (0, 255)
    rng = np.random.default_rng(2)
    calibration = rng.uniform(low, high, (32,) + SIZE).astype("float32")
    x = rng.uniform(low, high, (2,) + SIZE).astype("float32")
    model = with_moving_statistics(keras, applications(keras)[name](), calibration)
    want = model.predict(x, verbose=0)
    assert want.std(axis=0).max() > 0.05 * np.abs(want).max()   # depends on the input
    graph, result = import_and_compare(keras, model, keras_dir / f"{name}.keras", [x],
                                       f"keras.applications.{name}")
    # every Keras variable but Normalization's sample count (bookkeeping for adapt)
    assert len(graph.weights()) == len([w for w in model.weights
                                        if not w.path.endswith("/count")])
    layer_types = {spec["type"] for spec in result.spec["layers"].values()}
    if name == "MobileNetV3Small":
        assert "Lambda" in layer_types          # x + 3 and * (1/6) as expressions


def test_transformer_encoder_without_masks(keras, keras_dir):
    """Token + position embedding, multi-head self-attention, residuals, layer
    normalisation, gelu feed-forward, mean pool, classifier."""
    keras.utils.set_random_seed(3)
    L = keras.layers
    steps, d = 12, 16
    tokens = keras.Input((steps,), dtype="int32", name="tokens")
    positions = keras.Input((steps,), dtype="int32", name="positions")
    x = L.Add()([L.Embedding(50, d)(tokens), L.Embedding(steps, d)(positions)])
    for block in range(2):
        attn = L.MultiHeadAttention(num_heads=2, key_dim=8, name=f"mha_{block}")(x, x)
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, attn]))
        ff = L.Dense(d)(L.Dense(32, activation="gelu")(x))
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, ff]))
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling1D()(x))
    model = keras.Model([tokens, positions], out, name="transformer_encoder")
    rng = np.random.default_rng(4)
    feeds = [rng.integers(0, 50, (8, steps)).astype("int32"),
             np.tile(np.arange(steps, dtype="int32"), (8, 1))]
    import_and_compare(keras, model, keras_dir / "transformer.keras", feeds,
                       "transformer encoder (no masks)")


def test_keras_operations_become_expressions(keras, keras_dir):
    """x + 3.0, 3.0 - x, x * y and x / 2 recorded by a functional model as operation
    nodes: imported as expression layers computing the same; another operation is
    refused by name."""
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    d = keras.layers.Dense(4, name="d")(a)
    out = (3.0 - (d + 3.0)) * b / 2
    model = keras.Model([a, b], out, name="ops")
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal((3, 4)).astype("float32") for _ in range(2)]
    graph, result = import_and_compare(keras, model, keras_dir / "ops.keras", feeds,
                                       "Keras operations")
    exprs = sorted(s["expr"] for s in result.spec["layers"].values() if s["type"] == "Lambda")
    assert exprs == ["3.0 - x", "x + 3.0", "x / 2.0", "x[0] * x[1]"]
    power = keras.Model(a, keras.ops.power(keras.layers.Dense(4)(a), 2.0))
    power.save(keras_dir / "power.keras")
    with pytest.raises(InputError, match="Keras operation Power .* has no graphspec "
                                         "converter; supported operations: Add"):
        import_keras(str(keras_dir / "power.keras"))
