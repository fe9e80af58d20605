"""ONNX forms of the activations Layer zoo II added (Keras' names), one small function
each, looked up by name from ``onnx_layers.activation``. Every form uses opset-13 ops
only (HardSwish and Mish nodes need 14 and 18, so they are composed here)."""
from __future__ import annotations

import math


def _const(b, value):
    return b.scalar(value, b.float_dtype)


def relu6(b, x, hint):
    return b.op("Clip", [x, _const(b, 0), _const(b, 6)], hint)


def leaky_relu(b, x, hint, negative_slope=0.2):
    return b.op("LeakyRelu", [x], hint, alpha=float(negative_slope))


def silu(b, x, hint):
    return b.op("Mul", [x, b.op("Sigmoid", [x], f"{hint}_sigmoid")], hint)


def hard_sigmoid(b, x, hint):
    """relu6(x + 3) / 6, written as Keras writes it (HardSigmoid's alpha * x + beta
    rounds differently in float32)."""
    shifted = b.op("Add", [x, _const(b, 3)], f"{hint}_shifted")
    return b.op("Div", [relu6(b, shifted, f"{hint}_relu6"), _const(b, 6)], hint)


def hard_silu(b, x, hint):
    return b.op("Mul", [x, hard_sigmoid(b, x, f"{hint}_gate")], hint)


def mish(b, x, hint):
    soft = b.op("Softplus", [x], f"{hint}_softplus")
    return b.op("Mul", [x, b.op("Tanh", [soft], f"{hint}_tanh")], hint)


def softsign(b, x, hint):
    return b.op("Softsign", [x], hint)


def exponential(b, x, hint):
    return b.op("Exp", [x], hint)


def gelu_tanh(b, x, hint):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    cube = b.op("Mul", [b.op("Mul", [x, x], f"{hint}_sq"), x], f"{hint}_cube")
    inner = b.op("Add", [x, b.op("Mul", [cube, _const(b, 0.044715)], f"{hint}_c3")],
                 f"{hint}_inner")
    t = b.op("Tanh", [b.op("Mul", [inner, _const(b, math.sqrt(2 / math.pi))],
                           f"{hint}_scaled")], f"{hint}_tanh")
    half = b.op("Mul", [x, _const(b, 0.5)], f"{hint}_half")
    return b.op("Mul", [half, b.op("Add", [t, _const(b, 1)], f"{hint}_one")], hint)


def log_softmax(b, x, hint, axis=-1):
    return b.op("LogSoftmax", [x], hint, axis=axis)


ZOO_ACTIVATIONS = {
    "relu6": relu6, "leaky_relu": leaky_relu, "silu": silu, "swish": silu,
    "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "hard_swish": hard_silu,
    "mish": mish, "softsign": softsign, "exponential": exponential,
    "gelu_tanh": gelu_tanh, "log_softmax": log_softmax,
}
