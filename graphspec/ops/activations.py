"""Activation functions (Keras names and defaults), each forward with its backward."""
from __future__ import annotations

import math

import numpy as np

from ..autodiff.engine import Variable, as_variable, result

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def linear(a) -> Variable:
    return as_variable(a)


def relu(a) -> Variable:
    a = as_variable(a)
    positive = a.data > 0
    return result(a.data * positive, (a,), lambda g: (g * positive,))


def sigmoid(a) -> Variable:
    a = as_variable(a)
    out = _stable_sigmoid(a.data)
    return result(out, (a,), lambda g: (g * out * (1 - out),))


def _stable_sigmoid(x):
    # exp of a large positive number overflows; tanh form is stable for both signs.
    return 0.5 * (1 + np.tanh(0.5 * x))


def tanh(a) -> Variable:
    a = as_variable(a)
    out = np.tanh(a.data)
    return result(out, (a,), lambda g: (g * (1 - out * out),))


def softmax(a, axis=-1) -> Variable:
    a = as_variable(a)
    shifted = np.exp(a.data - a.data.max(axis=axis, keepdims=True))
    out = shifted / shifted.sum(axis=axis, keepdims=True)
    return result(out, (a,),
                  lambda g: (out * (g - (g * out).sum(axis=axis, keepdims=True)),))


def log_softmax(a, axis=-1) -> Variable:
    a = as_variable(a)
    shifted = a.data - a.data.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return result(out, (a,),
                  lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),))


def elu(a, alpha=1.0) -> Variable:
    a = as_variable(a)
    negative = a.data < 0
    expm = np.expm1(np.minimum(a.data, 0))
    out = np.where(negative, alpha * expm, a.data)
    return result(out, (a,), lambda g: (g * np.where(negative, alpha * (expm + 1), 1),))


def selu(a) -> Variable:
    a = as_variable(a)
    negative = a.data < 0
    expm = np.expm1(np.minimum(a.data, 0))
    out = SELU_SCALE * np.where(negative, SELU_ALPHA * expm, a.data)
    return result(out, (a,),
                  lambda g: (g * SELU_SCALE * np.where(negative, SELU_ALPHA * (expm + 1), 1),))


def softplus(a) -> Variable:
    a = as_variable(a)
    out = np.logaddexp(0, a.data)
    return result(out, (a,), lambda g: (g * _stable_sigmoid(a.data),))


def gelu(a) -> Variable:
    """Exact GELU, ``x * Phi(x)`` (Keras ``approximate=False``, PyTorch's default)."""
    a = as_variable(a)
    x = a.data
    # numpy has no erf; scipy is imported here, not at module load, because it costs
    # ~0.1 s of every CLI start and only exact GELU (Keras' default) needs it.
    from scipy.special import erf
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    out = x * cdf
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return result(out, (a,), lambda g: (g * (cdf + x * pdf),))


def gelu_tanh(a) -> Variable:
    """GELU's tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
    (Keras ``gelu(x, approximate=True)``, PyTorch ``approximate='tanh'``). Keras' ``gelu``
    activation *name* means the exact form (``approximate=False`` is the default of
    ``keras.activations.gelu``), so specs spell this one ``gelu_tanh``."""
    a = as_variable(a)
    x = a.data
    c = math.sqrt(2 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x ** 3))
    out = 0.5 * x * (1 + t)
    return result(out, (a,), lambda g: (
        g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)),))


def relu6(a) -> Variable:
    """``min(max(x, 0), 6)``; the gradient passes strictly inside (0, 6) (PyTorch's)."""
    a = as_variable(a)
    inside = (a.data > 0) & (a.data < 6)
    return result(np.clip(a.data, 0, 6), (a,), lambda g: (g * inside,))


def leaky_relu(a, negative_slope=0.2) -> Variable:
    """``x`` if ``x > 0`` else ``negative_slope * x``; the activation's default slope is
    Keras' 0.2 (the LeakyReLU *layer* defaults to 0.3)."""
    a = as_variable(a)
    slope = np.where(a.data > 0, 1, negative_slope).astype(a.dtype, copy=False)
    return result(a.data * slope, (a,), lambda g: (g * slope,))


def relu_general(a, negative_slope=0.0, max_value=None, threshold=0.0) -> Variable:
    """Keras' ``relu(x, negative_slope, max_value, threshold)`` (the ReLU layer):
    ``x`` where ``threshold < x`` (capped at ``max_value``), else
    ``negative_slope * (x - threshold)``; inputs in (0, threshold] give 0."""
    a = as_variable(a)
    x = a.data
    above = x > threshold
    out = np.where(above, x, 0).astype(x.dtype, copy=False)
    slope = above.astype(x.dtype)
    if max_value is not None:
        capped = out > max_value
        out = np.where(capped, np.asarray(max_value, x.dtype), out)
        slope[capped] = 0
    if negative_slope:
        below = x < threshold
        out = out + np.where(below, negative_slope * (x - threshold), 0).astype(x.dtype)
        slope = slope + below * x.dtype.type(negative_slope)
    return result(out, (a,), lambda g: (g * slope,))


def silu(a) -> Variable:
    """``x * sigmoid(x)`` (Keras ``silu``, alias ``swish``)."""
    a = as_variable(a)
    s = _stable_sigmoid(a.data)
    return result(a.data * s, (a,), lambda g: (g * s * (1 + a.data * (1 - s)),))


def hard_sigmoid(a) -> Variable:
    """Keras 3's ``relu6(x + 3) / 6`` (Keras 2's was ``0.2 x + 0.5``; graphspec's
    recurrent layers keep that one as their ``hard_sigmoid`` gate, as Keras 2 did)."""
    a = as_variable(a)
    inside = (a.data > -3) & (a.data < 3)
    out = np.clip(a.data + 3, 0, 6) / 6
    return result(out, (a,), lambda g: (g * inside / 6,))


def hard_silu(a) -> Variable:
    """``x * relu6(x + 3) / 6`` (Keras ``hard_silu``, alias ``hard_swish``)."""
    a = as_variable(a)
    x = a.data
    out = x * np.clip(x + 3, 0, 6) / 6
    slope = np.where(x < -3, 0, np.where(x > 3, 1, (2 * x + 3) / 6)).astype(x.dtype)
    return result(out, (a,), lambda g: (g * slope,))


def mish(a) -> Variable:
    """``x * tanh(softplus(x))``."""
    a = as_variable(a)
    x = a.data
    t = np.tanh(np.logaddexp(0, x))
    return result(x * t, (a,),
                  lambda g: (g * (t + x * (1 - t * t) * _stable_sigmoid(x)),))


def softsign(a) -> Variable:
    """``x / (1 + |x|)``."""
    a = as_variable(a)
    denominator = 1 + np.abs(a.data)
    return result(a.data / denominator, (a,), lambda g: (g / (denominator * denominator),))


def exponential(a) -> Variable:
    a = as_variable(a)
    out = np.exp(a.data)
    return result(out, (a,), lambda g: (g * out,))


# Keras' activation names as Keras spells them (aliases included: swish = silu,
# hard_swish = hard_silu), plus graphspec's ``gelu_tanh`` for the approximate GELU.
ACTIVATIONS = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "elu": elu, "selu": selu, "softplus": softplus, "gelu": gelu, "gelu_tanh": gelu_tanh,
    "relu6": relu6, "leaky_relu": leaky_relu, "silu": silu, "swish": silu,
    "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "hard_swish": hard_silu,
    "mish": mish, "softsign": softsign, "exponential": exponential,
    "log_softmax": log_softmax,
}
