"""Keras' initializer names, with Keras' definitions: statistics of large draws against
the definitions (and against Keras' own draws), and a spec that names them validates."""
import os

# Keras picks its backend when first imported: torch, the reference here
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

from graphspec import api
from graphspec.errors import ShapeError, SpecErrors
from graphspec.initializers import INITIALIZERS, initialize

TRUNC = 0.87962566103423978     # std of a unit normal truncated at +-2


def draw(name, shape, seed=0):
    return initialize(name, shape, np.random.default_rng(seed), np.float64)


# name -> (shape, expected mean, expected std, bound or None); fan_in 400, fan_out 500
SHAPE = (400, 500)
EXPECTED = {
    "uniform": (0.0, 0.05 / np.sqrt(3), 0.05),
    "random_uniform": (0.0, 0.05 / np.sqrt(3), 0.05),
    "normal": (0.0, 0.05, None),
    "random_normal": (0.0, 0.05, None),
    "truncated_normal": (0.0, 0.05 * TRUNC, 0.1),
    "lecun_uniform": (0.0, np.sqrt(1 / 400), np.sqrt(3 / 400)),
    "lecun_normal": (0.0, np.sqrt(1 / 400), 2 * np.sqrt(1 / 400) / TRUNC),
    "variance_scaling": (0.0, np.sqrt(1 / 400), 2 * np.sqrt(1 / 400) / TRUNC),
    "glorot_uniform": (0.0, np.sqrt(2 / 900), np.sqrt(6 / 900)),
    "glorot_normal": (0.0, np.sqrt(2 / 900), 2 * np.sqrt(2 / 900) / TRUNC),
    "he_uniform": (0.0, np.sqrt(2 / 400), np.sqrt(6 / 400)),
    "he_normal": (0.0, np.sqrt(2 / 400), 2 * np.sqrt(2 / 400) / TRUNC),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_statistics_of_a_large_draw_match_keras_definition(name):
    mean, std, bound = EXPECTED[name]
    x = draw(name, SHAPE)
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / np.sqrt(n)
    assert abs(x.std() / std - 1) < 0.01
    if bound is not None:
        assert np.abs(x).max() <= bound * (1 + 1e-12)
        assert np.abs(x).max() > 0.99 * bound           # the bound is reached, not smaller
    else:
        assert np.abs(x).max() > 4 * std                # untruncated tails


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_statistics_match_keras_own_draws(name):
    keras = pytest.importorskip("keras")
    ours = draw(name, SHAPE)
    theirs = np.asarray(keras.ops.convert_to_numpy(
        keras.initializers.get(name)(SHAPE, dtype="float64")))
    assert abs(ours.std() / theirs.std() - 1) < 0.015
    assert abs(ours.mean() - theirs.mean()) < 10 * theirs.std() / np.sqrt(ours.size)
    # quantiles, not the maximum: Keras' torch truncated_normal keeps the first of four
    # candidates inside +-2 std and, once in ~4e6 draws, an out-of-range one
    for q in (0.5, 0.99, 0.9999):
        a, b = np.quantile(np.abs(ours), q), np.quantile(np.abs(theirs), q)
        assert abs(a / b - 1) < 0.05, q


def test_conv_kernel_fans_count_the_receptive_field():
    # (3, 3, 16, 32): fan_in 144, fan_out 288, as Keras' compute_fans
    x = draw("lecun_uniform", (3, 3, 16, 32))
    assert np.abs(x).max() <= np.sqrt(3 / 144)
    assert np.abs(x).max() > 0.99 * np.sqrt(3 / 144)


def test_constant_names_and_identity():
    assert (draw("zero", (3, 4)) == 0).all() and (draw("zeros", (3, 4)) == 0).all()
    assert (draw("one", (3, 4)) == 1).all()
    np.testing.assert_array_equal(draw("identity", (3, 5)), np.eye(3, 5))
    with pytest.raises(ShapeError, match="Identity matrix initializer can only be used "
                                         "for 2D matrices"):
        draw("identity", (3, 3, 4))


def test_every_keras_alias_is_a_keras_name():
    keras = pytest.importorskip("keras")
    for name in INITIALIZERS:
        assert keras.initializers.get(name) is not None, name


def test_a_spec_using_keras_names_validates_and_builds(tmp_path):
    spec = tmp_path / "inits.yaml"
    spec.write_text("""\
graphspec: 1
layers:
  a: {type: Dense, units: 8, kernel_initializer: identity, bias_initializer: one}
  b: {type: Dense, units: 6, kernel_initializer: uniform, bias_initializer: zero}
  c: {type: Dense, units: 5, kernel_initializer: truncated_normal, bias_initializer: normal}
  d: {type: Dense, units: 4, kernel_initializer: variance_scaling}
  e: {type: Dense, units: 3, kernel_initializer: lecun_uniform}
models:
  m:
    inputs: {x: {shape: [8]}}
    calls:
      - {layer: a, in: x, out: h1}
      - {layer: b, in: h1, out: h2}
      - {layer: c, in: h2, out: h3}
      - {layer: d, in: h3, out: h4}
      - {layer: e, in: h4, out: y}
    outputs: [y]
""")
    graph = api.load(str(spec), seed=0)
    w = graph.weights()
    np.testing.assert_array_equal(w["a/kernel"].data, np.eye(8))
    assert (w["a/bias"].data == 1).all()
    assert np.abs(w["b/kernel"].data).max() <= 0.05
    assert np.abs(w["c/kernel"].data).max() <= 0.1
    assert np.abs(w["e/kernel"].data).max() <= np.sqrt(3 / 4)    # fan_in 4


def test_a_spec_with_a_name_keras_lacks_is_refused(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("""\
graphspec: 1
layers:
  a: {type: Dense, units: 8, kernel_initializer: xavier}
models:
  m:
    inputs: {x: {shape: [8]}}
    calls:
      - {layer: a, in: x, out: y}
    outputs: [y]
""")
    with pytest.raises(SpecErrors, match="xavier"):
        api.load(str(spec), seed=0)


def test_keras_import_keeps_keras_initializer_names(tmp_path):
    keras = pytest.importorskip("keras")
    from graphspec.interop.keras_import import import_keras
    inits = {"a": keras.initializers.TruncatedNormal(), "b": keras.initializers.LecunUniform(),
             "c": keras.initializers.Identity(), "d": keras.initializers.VarianceScaling(),
             "e": "uniform"}
    model = keras.Sequential([keras.Input((4,))] + [
        keras.layers.Dense(4, kernel_initializer=init, name=name) for name, init in inits.items()])
    path = tmp_path / "inits.keras"
    model.save(path)
    result = import_keras(str(path))
    assert result.notes == []
    got = {name: result.spec["layers"][name].get("kernel_initializer") for name in inits}
    assert got == {"a": "truncated_normal", "b": "lecun_uniform", "c": "identity",
                   "d": "lecun_normal", "e": "random_uniform"}
