"""Dropout (Keras' inverted dropout): identity at inference; in training a ``rate``
fraction zeroed and the rest scaled by ``1/(1-rate)``; reproducible from the run's
generator; gradients only through kept units; ``noise_shape`` broadcasting."""
import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import ShapeError
from graphspec.layers.base import CallContext
from graphspec.layers.dropout import Dropout


def run(layer, x, training=True, seed=0, rng=None):
    rng = rng if rng is not None else np.random.default_rng(seed)
    return layer.forward([Variable(x)], CallContext(training=training, rng=rng))[0].data


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_identity_at_inference(rate):
    x = np.random.default_rng(0).standard_normal((4, 5, 3))
    layer = Dropout("drop", {"rate": rate})
    xv = Variable(x)
    ctx = CallContext(training=False)
    out = layer.forward([xv], ctx)[0]
    np.testing.assert_array_equal(out.data, x)
    assert ctx.state_updates == []


def test_rate_zero_is_identity_in_training():
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_array_equal(run(Dropout("drop", {"rate": 0.0}), x), x)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kept_fraction_and_scaling(rate, dtype):
    x = np.random.default_rng(1).uniform(0.5, 2.0, (200, 250)).astype(dtype)   # no zeros
    out = run(Dropout("drop", {"rate": rate}), x, seed=2)
    assert out.dtype == dtype and out.shape == x.shape
    kept = out != 0
    n = x.size
    # binomial standard deviation of the kept fraction: sqrt(p(1-p)/n) ~ 0.003 here
    assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(out[kept], x[kept] / dtype(1 - rate),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)
    # expectation preserved (inverted dropout)
    assert abs(out.mean() / x.mean() - 1) < 0.02


def test_seeded_reproducibility():
    x = np.ones((6, 7))
    layer = Dropout("drop", {"rate": 0.5})
    np.testing.assert_array_equal(run(layer, x, seed=3), run(layer, x, seed=3))
    assert not np.array_equal(run(layer, x, seed=3), run(layer, x, seed=4))
    # one generator, two calls: two different masks, reproduced by the same sequence
    rng = np.random.default_rng(5)
    first, second = run(layer, x, rng=rng), run(layer, x, rng=rng)
    assert not np.array_equal(first, second)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(run(layer, x, rng=rng), first)
    np.testing.assert_array_equal(run(layer, x, rng=rng), second)


@pytest.mark.parametrize("rate", [0.25, 0.6])
def test_gradient_only_through_kept_units(rate):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (5, 8))
    g = rng.standard_normal(x.shape)
    layer = Dropout("drop", {"rate": rate})
    with recording():
        xv = Variable(x, requires_grad=True)
        out = layer.forward([xv], CallContext(training=True, rng=np.random.default_rng(7)))[0]
        backward(out, seed=g)
    kept = out.data != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(xv.grad[kept], g[kept] / (1 - rate), rtol=1e-12)
    np.testing.assert_array_equal(xv.grad[~kept], 0.0)


def test_finite_differences_with_a_fixed_mask():
    """Each CallContext() gets the same seeded generator, so the mask is fixed."""
    layer = Dropout("drop", {"rate": 0.4, "noise_shape": [None, 1, 3]})
    x = np.random.default_rng(0).standard_normal((3, 4, 3))
    check_gradients(lambda xv: layer.forward([xv], CallContext(training=True))[0], x)


@pytest.mark.parametrize("noise_shape, shared_axes", [
    ([None, 1, None], (1,)),      # same mask across timesteps (SpatialDropout1D-like)
    ([None, 1, 1, None], (1, 2)),  # same mask across space (SpatialDropout2D-like)
    ([1, None, None], (0,)),      # same mask for every sample
    ([None, None, 1], (2,)),
])
def test_noise_shape_broadcasting(noise_shape, shared_axes):
    shape = (6, 5, 4) if len(noise_shape) == 3 else (6, 3, 4, 5)
    x = np.random.default_rng(0).uniform(0.5, 1.5, shape)
    layer = Dropout("drop", {"rate": 0.5, "noise_shape": noise_shape})
    assert layer.compute_output_shapes([(None,) + shape[1:]]) == [(None,) + shape[1:]]
    out = run(layer, x, seed=1)
    mask = out != 0
    np.testing.assert_allclose(out[mask], x[mask] * 2)
    # the mask is constant along the shared axes, and not constant along the others
    first = np.take(mask, [0], axis=shared_axes[0]) if len(shared_axes) == 1 else mask[:, :1, :1]
    np.testing.assert_array_equal(mask, np.broadcast_to(first, mask.shape))
    assert 0 < mask.mean() < 1


def test_noise_shape_with_explicit_dims_matching_the_input():
    x = np.ones((4, 3, 2))
    out = run(Dropout("drop", {"rate": 0.5, "noise_shape": [4, 1, 2]}), x, seed=0)
    assert (out == out[:, :1, :]).all()


# Keras refuses a noise_shape that does not fit the input; so does graphspec, at build time.
@pytest.mark.parametrize("noise_shape", [[None, 1], [None, 1, 5, 1], [None, 2, 5]])
def test_noise_shape_that_does_not_fit_is_a_shape_error(noise_shape):
    with pytest.raises(ShapeError, match="noise_shape"):
        Dropout("drop", {"rate": 0.5, "noise_shape": noise_shape}) \
            .compute_output_shapes([(None, 3, 5)])
