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


ACTIVATIONS = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "elu": elu, "selu": selu, "softplus": softplus, "gelu": gelu,
}
