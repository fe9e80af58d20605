"""Weight and activity penalties (Keras ``l1``, ``l2``, ``l1_l2``), differentiable.

The penalty of a weight ``w`` is ``l1 * sum(|w|) + l2 * sum(w**2)``; its gradient is
``l1 * sign(w) + 2 * l2 * w`` (Keras/TensorFlow take ``sign(0) = 0``). A config is the
spec's ``{l1: a, l2: b}`` (a missing factor is 0), ``None`` (no penalty), or one of
Keras' names: ``"l1"`` and ``"l2"`` use Keras' default factor 0.01; ``"l1_l2"`` uses
Keras' ``L1L2()`` defaults, which are 0 for both.

An *activity* regularizer penalises a layer's output; Keras divides that penalty by
the batch size (``activity_penalty``).
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result
from ..errors import SpecError

_NAMED = {"l1": (0.01, 0.0), "l2": (0.0, 0.01), "l1_l2": (0.0, 0.0),
          "L1": (0.01, 0.0), "L2": (0.0, 0.01), "L1L2": (0.0, 0.0)}


def penalty(w, l1: float = 0.0, l2: float = 0.0) -> Variable:
    """Scalar ``l1 * sum(|w|) + l2 * sum(w**2)`` in ``w``'s dtype."""
    w = as_variable(w)
    x = w.data
    value = np.zeros((), dtype=x.dtype)
    if l1:
        value = value + l1 * np.abs(x).sum()
    if l2:
        value = value + l2 * (x * x).sum()
    value = np.asarray(value, dtype=x.dtype)

    def backward(g):
        grad = np.zeros_like(x)
        if l1:
            grad = grad + l1 * np.sign(x)
        if l2:
            grad = grad + (2 * l2) * x
        return (g * grad,)
    return result(value, (w,), backward)


def l1(w, l1: float = 0.01) -> Variable:
    return penalty(w, l1=l1)


def l2(w, l2: float = 0.01) -> Variable:
    return penalty(w, l2=l2)


def l1_l2(w, l1: float = 0.0, l2: float = 0.0) -> Variable:
    return penalty(w, l1=l1, l2=l2)


class Regularizer:
    """A penalty with its factors bound: ``reg(w) -> scalar Variable``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        for name, value in (("l1", l1), ("l2", l2)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not np.isfinite(value) or value < 0:
                raise SpecError(f"regularizer factor {name} must be a number >= 0, "
                                f"got {value!r}", path=name)
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w) -> Variable:
        return penalty(w, self.l1, self.l2)

    @property
    def config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"Regularizer(l1={self.l1}, l2={self.l2})"


def get_regularizer(config):
    """``None`` -> ``None``; ``{l1: a, l2: b}`` or a Keras name -> :class:`Regularizer`."""
    if config is None or isinstance(config, Regularizer):
        return config
    if isinstance(config, str):
        if config not in _NAMED:
            raise SpecError(f"unknown regularizer '{config}'; use l1, l2, l1_l2 or a "
                            "mapping {l1: a, l2: b}")
        return Regularizer(*_NAMED[config])
    if isinstance(config, dict):
        unknown = sorted(set(config) - {"l1", "l2"})
        if unknown:
            raise SpecError(f"a regularizer takes only l1 and l2, got {', '.join(unknown)}")
        return Regularizer(config.get("l1", 0.0), config.get("l2", 0.0))
    raise SpecError(f"a regularizer is a mapping {{l1: a, l2: b}}, got "
                    f"{type(config).__name__}")


def activity_penalty(output, config) -> Variable | None:
    """Keras activity regularization: the output's penalty divided by the batch size."""
    reg = get_regularizer(config)
    if reg is None:
        return None
    output = as_variable(output)
    value = reg(output)
    if output.data.ndim == 0:
        return value
    batch = output.shape[0]
    if batch == 0:
        return Variable(np.zeros((), dtype=output.dtype))
    out = value.data / output.dtype.type(batch)
    return result(np.asarray(out, dtype=output.dtype), (value,), lambda g: (g / batch,))


def weight_regularizers(uses) -> list:
    """``(layer, weight name, Regularizer)`` for every weight regularizer set on the
    layers of a model walk (``Model.layer_uses()``), frozen layers included: as in
    Keras, a frozen layer's penalty is still part of the loss, it just gets no update."""
    return [(use.layer, weight, get_regularizer(config))
            for use in uses
            for weight, (_arg, config) in use.layer.weight_regularizers().items()]
