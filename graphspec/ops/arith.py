"""Elementwise arithmetic with numpy broadcasting; each op's backward sits under it."""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, as_variable, result


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the adjoint of numpy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _binary(a, b):
    return as_variable(a), as_variable(b)


def add(a, b) -> Variable:
    a, b = _binary(a, b)
    return result(a.data + b.data, (a, b),
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a, b) -> Variable:
    a, b = _binary(a, b)
    return result(a.data - b.data, (a, b),
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a, b) -> Variable:
    a, b = _binary(a, b)
    return result(a.data * b.data, (a, b),
                  lambda g: (unbroadcast(g * b.data, a.shape), unbroadcast(g * a.data, b.shape)))


def div(a, b) -> Variable:
    a, b = _binary(a, b)
    out = a.data / b.data
    return result(out, (a, b),
                  lambda g: (unbroadcast(g / b.data, a.shape),
                             unbroadcast(-g * out / b.data, b.shape)))


def neg(a) -> Variable:
    a = as_variable(a)
    return result(-a.data, (a,), lambda g: (-g,))


def power(a, b) -> Variable:
    """``a ** b``; the gradient wrt ``b`` uses log(a) and is only defined for a > 0."""
    a, b = _binary(a, b)
    out = a.data ** b.data

    def backward(g):
        ga = g * b.data * a.data ** (b.data - 1)
        gb = None
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(g * out * np.log(np.where(a.data > 0, a.data, 1)), b.shape)
        return unbroadcast(ga, a.shape), gb
    return result(out, (a, b), backward)


def abs_(a) -> Variable:
    a = as_variable(a)
    return result(np.abs(a.data), (a,), lambda g: (g * np.sign(a.data),))


def exp(a) -> Variable:
    a = as_variable(a)
    out = np.exp(a.data)
    return result(out, (a,), lambda g: (g * out,))


def log(a) -> Variable:
    a = as_variable(a)
    return result(np.log(a.data), (a,), lambda g: (g / a.data,))


def sqrt(a) -> Variable:
    a = as_variable(a)
    out = np.sqrt(a.data)
    return result(out, (a,), lambda g: (g / (2 * out),))


def square(a) -> Variable:
    a = as_variable(a)
    return result(a.data * a.data, (a,), lambda g: (2 * g * a.data,))


def clip(a, low, high) -> Variable:
    """Clip to [low, high]; the gradient passes only where the value was inside."""
    a = as_variable(a)
    inside = (a.data >= low) & (a.data <= high)
    return result(np.clip(a.data, low, high), (a,), lambda g: (g * inside,))


def maximum(a, b) -> Variable:
    """Elementwise max; ties send the gradient to ``a`` (as TensorFlow does)."""
    a, b = _binary(a, b)
    pick_a = a.data >= b.data
    return result(np.where(pick_a, a.data, b.data), (a, b),
                  lambda g: (unbroadcast(g * pick_a, a.shape), unbroadcast(g * ~pick_a, b.shape)))


def where(keep, a, b) -> Variable:
    """``np.where(keep, a, b)`` (``keep``: a plain boolean array) with gradients to ``a``
    and ``b``; either may be a plain number (a fill value), which gets none."""
    a_data = a.data if isinstance(a, Variable) else a
    b_data = b.data if isinstance(b, Variable) else b
    parents = tuple(v for v in (a, b) if isinstance(v, Variable))

    def backward(g):
        zero = g.dtype.type(0)
        grads = []
        if isinstance(a, Variable):
            grads.append(unbroadcast(np.where(keep, g, zero), a.shape))
        if isinstance(b, Variable):
            grads.append(unbroadcast(np.where(keep, zero, g), b.shape))
        return tuple(grads)
    return result(np.where(keep, a_data, b_data), parents, backward)


def minimum(a, b) -> Variable:
    a, b = _binary(a, b)
    pick_a = a.data <= b.data
    return result(np.where(pick_a, a.data, b.data), (a, b),
                  lambda g: (unbroadcast(g * pick_a, a.shape), unbroadcast(g * ~pick_a, b.shape)))


def sign(a) -> Variable:
    """Sign has zero gradient almost everywhere; it is a constant for the tape."""
    a = as_variable(a)
    return Variable(np.sign(a.data))
