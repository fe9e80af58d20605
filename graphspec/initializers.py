"""Keras' weight initializers, by name, drawing from one seeded numpy Generator."""
from __future__ import annotations

import numpy as np


def _fans(shape):
    """Keras' fan computation: conv kernels count the receptive field (HWIO layout)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, rng):
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def glorot_normal(shape, rng):
    fan_in, fan_out = _fans(shape)
    return _truncated_normal(shape, rng, np.sqrt(2.0 / (fan_in + fan_out)))


def he_normal(shape, rng):
    return _truncated_normal(shape, rng, np.sqrt(2.0 / _fans(shape)[0]))


def he_uniform(shape, rng):
    limit = np.sqrt(6.0 / _fans(shape)[0])
    return rng.uniform(-limit, limit, shape)


def lecun_normal(shape, rng):
    return _truncated_normal(shape, rng, np.sqrt(1.0 / _fans(shape)[0]))


def _truncated_normal(shape, rng, stddev):
    """Normal cut at two standard deviations, rescaled as Keras' variance-scaling does."""
    stddev = stddev / 0.87962566103423978
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


def orthogonal(shape, rng, gain=1.0):
    """Keras' orthogonal: QR of a normal matrix of shape (prod(shape[:-1]), shape[-1])."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)


def zeros(shape, rng):
    return np.zeros(shape)


def ones(shape, rng):
    return np.ones(shape)


def uniform(shape, rng):
    """Keras' RandomUniform default range, used by Embedding."""
    return rng.uniform(-0.05, 0.05, shape)


def normal(shape, rng):
    return rng.normal(0.0, 0.05, shape)


INITIALIZERS = {
    "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "he_normal": he_normal, "he_uniform": he_uniform, "lecun_normal": lecun_normal,
    "orthogonal": orthogonal, "zeros": zeros, "ones": ones,
    "random_uniform": uniform, "random_normal": normal,
}


def initialize(name, shape, rng: np.random.Generator, dtype) -> np.ndarray:
    """``name`` is a Keras initializer name, or a layer's own callable (LSTM's bias with
    the forget gate at one)."""
    fn = name if callable(name) else INITIALIZERS[name]
    return np.asarray(fn(tuple(shape), rng), dtype=dtype)
