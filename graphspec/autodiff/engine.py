"""Reverse-mode autodiff over whole numpy arrays, in the spirit of micrograd.

A :class:`Variable` holds an array, the variables it was computed from (``parents``)
and a ``backward`` closure that maps the gradient of the output to the gradients of
the parents, in the order of the parents. The closure is defined right next to the
forward computation in each op (see ``graphspec.ops``); the engine below only sorts
the tape topologically and runs the closures in reverse. The cleverness lives in the
ops, not here.

Outside :func:`recording` blocks (inference) ops record nothing, so predicting costs
one numpy call per op and no closures.
"""
from __future__ import annotations

import contextlib

import numpy as np

_GRAD_ENABLED = [False]


@contextlib.contextmanager
def recording(enabled: bool = True):
    """Record a tape inside the block (training) or not (inference)."""
    previous = _GRAD_ENABLED[0]
    _GRAD_ENABLED[0] = enabled
    try:
        yield
    finally:
        _GRAD_ENABLED[0] = previous


def is_recording() -> bool:
    return _GRAD_ENABLED[0]


class Variable:
    """An array in the tape. ``requires_grad`` leaves are weights; others are results."""

    __slots__ = ("data", "grad", "parents", "backward", "requires_grad", "name")

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        self.data = data
        self.grad = None
        self.parents: tuple = ()
        self.backward = None
        self.requires_grad = requires_grad
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def __repr__(self):
        return f"Variable(shape={self.data.shape}, dtype={self.data.dtype}, name={self.name})"


def as_variable(x) -> Variable:
    return x if isinstance(x, Variable) else Variable(np.asarray(x))


def result(data, parents, backward) -> Variable:
    """Wrap an op's output; keep ``backward`` only if a gradient can flow to a parent."""
    out = Variable(data)
    if _GRAD_ENABLED[0]:
        for p in parents:
            if p.requires_grad:
                out.parents = tuple(parents)
                out.backward = backward
                out.requires_grad = True
                break
    return out


def _topological_order(root: Variable) -> list:
    """Variables reachable from ``root`` that need a gradient, parents before children.

    Iterative, so a 10,000-op chain does not hit Python's recursion limit.
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        var, expanded = stack.pop()
        if expanded:
            order.append(var)
            continue
        if id(var) in seen:
            continue
        seen.add(id(var))
        stack.append((var, True))
        for parent in var.parents:
            if parent.requires_grad and id(parent) not in seen:
                stack.append((parent, False))
    return order


def _released(_grad):
    raise RuntimeError("backward() through a graph a second time: its saved arrays were "
                       "released by the first backward pass; pass retain_graph=True to "
                       "the first call to keep them")


def backward(root: Variable, seed=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires it.

    ``seed`` defaults to ones (a scalar loss gets gradient 1). Gradients of a variable
    used several times (a shared layer's weights) are summed, which is what makes
    weight sharing train correctly without any special case.

    As in PyTorch, each op's closure (and the arrays it saved for its backward, such as
    im2col patches) is released as soon as its gradient has been propagated, so memory
    falls during the backward pass instead of peaking at its end; a second backward
    through the same graph then raises. ``retain_graph=True`` keeps the tape.
    """
    if not root.requires_grad:
        return
    grads = {id(root): np.ones_like(root.data) if seed is None else seed}
    order = _topological_order(root)
    while order:
        var = order.pop()          # children before parents; drops the list's reference
        grad = grads.pop(id(var), None)
        if var.backward is None:  # a leaf: a weight
            if grad is not None:
                var.grad = grad if var.grad is None else var.grad + grad
            continue
        if grad is not None:
            for parent, parent_grad in zip(var.parents, var.backward(grad)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                if key in grads:
                    grads[key] = grads[key] + parent_grad
                else:
                    grads[key] = parent_grad
        if not retain_graph:
            var.backward, var.parents = _released, ()
