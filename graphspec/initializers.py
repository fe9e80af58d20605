"""Keras' weight initializers, by name, drawing from one seeded numpy Generator."""
from __future__ import annotations

import numpy as np

from .errors import ShapeError


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


def _variance_scaling(shape, rng, scale, mode, distribution):
    """Keras' ``VarianceScaling.__call__``: scale over max(1, fan), then a truncated
    normal whose standard deviation *after* truncation is sqrt(scale) (hence Keras'
    0.87962566103423978, the std of a unit normal cut at +-2), an untruncated normal, or
    a uniform on +-sqrt(3 scale)."""
    fan_in, fan_out = _fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, fan)
    if distribution == "truncated_normal":
        return _truncated_normal(shape, rng, np.sqrt(scale) / 0.87962566103423978)
    if distribution == "untruncated_normal":
        return rng.normal(0.0, np.sqrt(scale), shape)
    limit = np.sqrt(3.0 * scale)
    return rng.uniform(-limit, limit, shape)


def glorot_uniform(shape, rng):
    return _variance_scaling(shape, rng, 1.0, "fan_avg", "uniform")


def glorot_normal(shape, rng):
    return _variance_scaling(shape, rng, 1.0, "fan_avg", "truncated_normal")


def he_normal(shape, rng):
    return _variance_scaling(shape, rng, 2.0, "fan_in", "truncated_normal")


def he_uniform(shape, rng):
    return _variance_scaling(shape, rng, 2.0, "fan_in", "uniform")


def lecun_normal(shape, rng):
    return _variance_scaling(shape, rng, 1.0, "fan_in", "truncated_normal")


def lecun_uniform(shape, rng):
    return _variance_scaling(shape, rng, 1.0, "fan_in", "uniform")


def variance_scaling(shape, rng):
    """Keras' ``VarianceScaling()`` with its defaults: scale 1, fan_in, truncated normal
    (the same numbers as lecun_normal)."""
    return _variance_scaling(shape, rng, 1.0, "fan_in", "truncated_normal")


def _truncated_normal(shape, rng, stddev):
    """Keras' ``random.truncated_normal``: a normal of this (pre-truncation) standard
    deviation, values beyond two standard deviations redrawn."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


def truncated_normal(shape, rng):
    """Keras' ``TruncatedNormal()``: stddev 0.05 before truncation at +-0.1 (no
    variance correction: the draws' standard deviation is 0.05 * 0.8796)."""
    return _truncated_normal(shape, rng, 0.05)


def orthogonal(shape, rng, gain=1.0):
    """Keras' orthogonal: QR of a normal matrix of shape (prod(shape[:-1]), shape[-1])."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)


def identity(shape, rng):
    """Keras' ``Identity()``: ``eye(rows, cols)``, 2D weights only, as Keras refuses others."""
    if len(shape) != 2:
        raise ShapeError("Identity matrix initializer can only be used for 2D matrices. "
                         f"Received: shape={tuple(shape)} of rank {len(shape)}.")
    return np.eye(*shape)


def zeros(shape, rng):
    return np.zeros(shape)


def ones(shape, rng):
    return np.ones(shape)


def uniform(shape, rng):
    """Keras' RandomUniform default range, used by Embedding."""
    return rng.uniform(-0.05, 0.05, shape)


def normal(shape, rng):
    """Keras' RandomNormal defaults: mean 0, stddev 0.05."""
    return rng.normal(0.0, 0.05, shape)


# Keras' names (``keras.initializers.get``): the snake_case class names and its
# aliases uniform, normal, zero, one (not ``constant``: Keras' get("constant") fails).
INITIALIZERS = {
    "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "he_normal": he_normal, "he_uniform": he_uniform,
    "lecun_normal": lecun_normal, "lecun_uniform": lecun_uniform,
    "variance_scaling": variance_scaling, "truncated_normal": truncated_normal,
    "orthogonal": orthogonal, "identity": identity,
    "zeros": zeros, "zero": zeros, "ones": ones, "one": ones,
    "random_uniform": uniform, "uniform": uniform,
    "random_normal": normal, "normal": normal,
}


def initialize(name, shape, rng: np.random.Generator, dtype) -> np.ndarray:
    """``name`` is a Keras initializer name, or a layer's own callable (LSTM's bias with
    the forget gate at one)."""
    fn = name if callable(name) else INITIALIZERS[name]
    return np.asarray(fn(tuple(shape), rng), dtype=dtype)
