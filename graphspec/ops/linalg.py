"""Matrix products: ``matmul`` (numpy semantics), Keras' ``dot`` and ``batch_dot``."""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import _GRAD_ENABLED as _recording
from ..autodiff.engine import Variable, as_variable, result
from .arith import unbroadcast


def matmul(a, b) -> Variable:
    """``a @ b`` with numpy's batch broadcasting.

    A 2-D ``b`` (a Dense kernel) gets its gradient from one GEMM over all leading axes
    of ``a`` rather than a batched product followed by a sum.
    """
    a, b = as_variable(a), as_variable(b)
    if a.data.ndim < 2 or b.data.ndim < 2:
        raise ValueError(f"matmul needs operands of rank >= 2, got shapes {a.shape} and "
                         f"{b.shape}; use dot for vectors")

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g @ np.swapaxes(b.data, -1, -2), a.shape)
        if b.requires_grad:
            if b.data.ndim == 2:
                gb = a.data.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
            else:
                gb = unbroadcast(np.swapaxes(a.data, -1, -2) @ g, b.shape)
        return ga, gb
    return result(a.data @ b.data, (a, b), backward)


def linear(x, kernel, bias=None, relu: bool = False) -> Variable:
    """``relu?(x @ kernel + bias)`` as one op: a Dense layer's whole computation.

    One GEMM into a fresh array, the bias added and the ReLU applied in place, so the
    forward allocates one array and the tape holds one node instead of three. The
    backward masks the gradient once (``out > 0`` is ``pre-activation > 0``), and the
    kernel gradient is one GEMM over all leading axes of ``x``.
    """
    x = x if isinstance(x, Variable) else as_variable(x)
    kernel = kernel if isinstance(kernel, Variable) else as_variable(kernel)
    xd, kd = x.data, kernel.data
    if kd.ndim != 2 or xd.ndim < 1:
        raise ValueError(f"linear needs a 2-D kernel and an input of rank >= 1, got shapes "
                         f"{xd.shape} and {kd.shape}")
    # ndarray.dot is the same GEMM as @ for a 2-D input, with half the call overhead
    # (it matters for small layers); @ keeps numpy's batching for higher ranks.
    out = xd.dot(kd) if xd.ndim == 2 else xd @ kd
    if bias is not None:
        bias = bias if isinstance(bias, Variable) else as_variable(bias)
        bd = bias.data
        if bd.dtype is out.dtype or out.dtype == np.result_type(out, bd):
            out += bd
        else:          # a wider bias than the product: promote, as ``add`` would
            out = out + bd
    if relu:
        np.maximum(out, out.dtype.type(0), out=out)
    if not _recording[0]:
        return Variable(out)
    parents = (x, kernel) if bias is None else (x, kernel, bias)

    def backward(g):
        if relu:   # into a fresh array: ``g`` may be shared with other consumers
            g = np.multiply(g, out > 0, out=np.empty(g.shape, g.dtype))
        g2 = g.reshape(-1, kd.shape[1])
        gx = gk = gb = None
        if kernel.requires_grad:
            gk = xd.reshape(-1, kd.shape[0]).T @ g2
        if bias is not None and bias.requires_grad:
            gb = g2.sum(axis=0).reshape(bias.data.shape)
        if x.requires_grad:
            gx = g @ kd.T
        return (gx, gk) if bias is None else (gx, gk, gb)
    return result(out, parents, backward)


def dot(a, b) -> Variable:
    """Keras ``dot``: contract the last axis of ``a`` with the first axis of a 1-D or
    2-D ``b`` (a weight matrix); the batch axis of ``a`` is carried along.

    >>> dot(np.ones((4, 3)), np.ones((3, 2))).shape
    (4, 2)
    """
    a, b = as_variable(a), as_variable(b)
    if b.data.ndim > 2:
        raise ValueError(f"dot expects a 1-D or 2-D right operand, got shape {b.shape}; "
                         "use batch_dot for per-sample products")
    if b.data.ndim == 1:
        return result(a.data @ b.data, (a, b),
                      lambda g: (g[..., None] * b.data,
                                 (a.data * g[..., None]).reshape(-1, b.shape[0]).sum(0)))
    return matmul(a, b)


def _normalise_axes(axes, nd_a, nd_b):
    if isinstance(axes, int):
        axes = (axes, axes)
    ax_a, ax_b = (int(x) for x in axes)
    if not (-nd_a <= ax_a < nd_a and -nd_b <= ax_b < nd_b):
        raise ValueError(f"batch_dot axes {tuple(axes)} out of range for ranks {nd_a}, {nd_b}")
    ax_a, ax_b = ax_a % nd_a, ax_b % nd_b
    if ax_a == 0 or ax_b == 0:
        raise ValueError("batch_dot cannot contract the batch axis (axis 0)")
    return ax_a, ax_b


def batch_dot(a, b, axes=None) -> Variable:
    """Per-sample product contracting ``axes[0]`` of ``a`` with ``axes[1]`` of ``b``.

    Keras semantics: the result has ``a``'s remaining axes then ``b``'s; a result of
    rank 1 (only the batch axis) is expanded to ``(batch, 1)``.

    >>> batch_dot(np.array([[1., 2], [3, 4]]), np.array([[5., 6], [7, 8]]), axes=1).data
    array([[17.],
           [53.]])
    """
    a, b = as_variable(a), as_variable(b)
    nd_a, nd_b = a.data.ndim, b.data.ndim
    if axes is None:
        axes = (nd_a - 1, nd_b - 2 if nd_b > 2 else nd_b - 1)
    ax_a, ax_b = _normalise_axes(axes, nd_a, nd_b)
    if a.shape[ax_a] != b.shape[ax_b]:
        raise ValueError(f"batch_dot: axis {ax_a} of {a.shape} and axis {ax_b} of {b.shape} "
                         "differ in size")
    batch, n = a.shape[0], a.shape[ax_a]
    a_moved = np.moveaxis(a.data, ax_a, -1)          # (B, *ra, n)
    b_moved = np.moveaxis(b.data, ax_b, 1)           # (B, n, *rb)
    rest_a, rest_b = a_moved.shape[1:-1], b_moved.shape[2:]
    a3 = a_moved.reshape(batch, -1, n)
    b3 = b_moved.reshape(batch, n, -1)
    out = (a3 @ b3).reshape((batch,) + rest_a + rest_b)
    if out.ndim == 1:
        out = out[:, None]

    def backward(g):
        g3 = g.reshape(batch, a3.shape[1], b3.shape[2])
        ga = np.moveaxis((g3 @ b3.transpose(0, 2, 1)).reshape(a_moved.shape), -1, ax_a)
        gb = np.moveaxis((a3.transpose(0, 2, 1) @ g3).reshape(b_moved.shape), 1, ax_b)
        return ga, gb
    return result(out, (a, b), backward)
