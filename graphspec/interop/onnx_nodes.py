"""Small ONNX node patterns used by the layer table, the expression function table and
the recurrent converters (activations, exact GELU, L2 normalisation, Keras batch_dot);
their own module so none of those imports another."""
from __future__ import annotations

import math

from .onnx_activations import ZOO_ACTIVATIONS, log_softmax

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# -- activations (shared by Dense, Conv, Activation and the unrolled recurrences) ----------
def activation(b, x: str, name: str, hint: str, axis: int = -1) -> str:
    """``x`` through the Keras activation ``name`` (graphspec's formulas)."""
    if name == "linear":
        return x
    if name in _SIMPLE:
        return b.op(_SIMPLE[name], [x], hint)
    if name == "softmax":
        return b.op("Softmax", [x], hint, axis=axis)
    if name == "elu":
        return b.op("Elu", [x], hint, alpha=1.0)
    if name == "selu":
        return b.op("Selu", [x], hint, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if name == "gelu":
        return gelu(b, x, hint)
    if name == "log_softmax":
        return log_softmax(b, x, hint, axis=axis)
    if name in ZOO_ACTIVATIONS:
        return ZOO_ACTIVATIONS[name](b, x, hint)
    raise KeyError(name)   # unreachable: ACTIVATIONS below is the schema's list


_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus"}
ACTIVATIONS = frozenset(_SIMPLE) | {"linear", "softmax", "elu", "selu", "gelu"} | \
    frozenset(ZOO_ACTIVATIONS)


def gelu(b, x: str, hint: str) -> str:
    """Exact GELU ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (Gelu itself needs opset 20)."""
    dtype = b.float_dtype
    scaled = b.op("Div", [x, b.scalar(math.sqrt(2), dtype)], f"{hint}_scaled")
    cdf = b.op("Add", [b.scalar(1, dtype), b.op("Erf", [scaled], f"{hint}_erf")], f"{hint}_cdf")
    cdf = b.op("Mul", [cdf, b.scalar(0.5, dtype)], f"{hint}_half")
    return b.op("Mul", [x, cdf], hint)


def l2_normalize(b, x: str, axes, hint: str) -> str:
    """``x / sqrt(max(sum(x**2, axes), 1e-12))``."""
    squares = b.reduce("ReduceSum", b.op("Mul", [x, x], f"{hint}_sq"), axes, True,
                       f"{hint}_sumsq")
    floor = b.op("Max", [squares, b.scalar(1e-12, b.float_dtype)], f"{hint}_floor")
    return b.op("Div", [x, b.op("Sqrt", [floor], f"{hint}_norm")], hint)


def batch_dot(b, x: str, y: str, rank_x: int, rank_y: int, ax_x: int, ax_y: int,
              hint: str) -> str:
    """Keras batch_dot as one Einsum: x's remaining axes then y's; rank 1 -> (batch, 1)."""
    letters = iter("cdefghijklmnopqrstuvwxyz")
    sx = ["b"] + [next(letters) for _ in range(rank_x - 1)]
    sy = ["b"] + [next(letters) for _ in range(rank_y - 1)]
    sy[ax_y] = sx[ax_x]
    out = ["b"] + [s for i, s in enumerate(sx) if i not in (0, ax_x)] + \
        [s for i, s in enumerate(sy) if i not in (0, ax_y)]
    equation = f"{''.join(sx)},{''.join(sy)}->{''.join(out)}"
    result = b.op("Einsum", [x, y], hint if len(out) > 1 else f"{hint}_flat",
                  equation=equation)
    return result if len(out) > 1 else b.unsqueeze(result, [1], hint)
