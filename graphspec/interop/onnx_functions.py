"""ONNX converters keyed by expression function name, and the expression operators.

One entry per function of ``graphspec.expr.functions.FUNCTIONS``; each takes the
translator, the call node and the already translated arguments (parameter order,
defaults filled) and returns the value: an ONNX tensor (:class:`~.onnx_expr.T`, its
shape and dtype from graphspec's own evaluator), a :class:`~.onnx_expr.Sym`, or a Python
value (``shape(x)``). ``FUNCTION_REFUSALS`` names the functions with no ONNX form and
why; a test checks that the two tables cover the expression language.

Random functions export as ONNX RandomNormalLike/RandomUniformLike: a fresh draw on
every run, as ``predict`` draws, but from the runtime's generator, not graphspec's
stream, so the two agree in distribution, not value by value.
"""
from __future__ import annotations

import ast

import numpy as np

from ..expr.functions import as_axes, as_axis
from .onnx_values import Sym, T
from .onnx_nodes import batch_dot as einsum_batch_dot
from .onnx_nodes import gelu as gelu_nodes
from .onnx_nodes import l2_normalize as l2_nodes

# Functions with no ONNX form: name -> why (none today: every function exports).
FUNCTION_REFUSALS: dict = {}


def _out(tr, node, name: str) -> T:
    return tr.result(node, name)


def _unary(op_type, **attrs):
    def convert(tr, node, x):
        return _out(tr, node, tr.b.op(op_type, [tr.tensor(x).name], op_type.lower(), **attrs))
    return convert


def _square(tr, node, x):
    x = tr.tensor(x)
    return _out(tr, node, tr.b.op("Mul", [x.name, x.name], "square"))


def _gelu(tr, node, x):
    x = tr.tensor(x)
    saved, tr.b.float_dtype = tr.b.float_dtype, x.dtype   # constants in x's dtype
    try:
        return _out(tr, node, gelu_nodes(tr.b, x.name, "gelu"))
    finally:
        tr.b.float_dtype = saved


def _elu(tr, node, x, alpha):
    return _out(tr, node, tr.b.op("Elu", [tr.tensor(x).name], "elu", alpha=float(alpha)))


def _softmax(op_type):
    def convert(tr, node, x, axis):
        x = tr.tensor(x)
        return _out(tr, node, tr.b.op(op_type, [x.name], op_type.lower(),
                                      axis=as_axis(tr.concrete(axis, node, "axis"), x.ndim)))
    return convert


def _l2_normalize(tr, node, x, axis):
    x = tr.tensor(x)
    axes = as_axes(tr.concrete(axis, node, "axis"), x.ndim)
    saved, tr.b.float_dtype = tr.b.float_dtype, x.dtype
    try:
        return _out(tr, node, l2_nodes(tr.b, x.name, axes, "l2_normalize"))
    finally:
        tr.b.float_dtype = saved


def _clip(tr, node, x, low, high):
    x = tr.tensor(x)
    bounds = [tr.b.scalar(float(v), x.dtype) for v in (low, high)]
    return _out(tr, node, tr.b.op("Clip", [x.name] + bounds, "clip"))


def _elementwise(op_type):
    def convert(tr, node, x, y):
        return tensor_binary(tr, node, op_type, x, y)
    return convert


def _dot(tr, node, x, y):
    return tensor_binary(tr, node, "MatMul", x, y)


def _batch_dot(tr, node, x, y, axes):
    x, y = tr.pair(x, y)
    axes = tr.concrete(axes, node, "axes")
    if axes is None:
        ax, ay = x.ndim - 1, (y.ndim - 2 if y.ndim > 2 else y.ndim - 1)
    else:
        pair = (axes, axes) if isinstance(axes, int) else axes
        ax, ay = as_axis(pair[0], x.ndim), as_axis(pair[1], y.ndim)
    return _out(tr, node, einsum_batch_dot(tr.b, x.name, y.name, x.ndim, y.ndim, ax, ay,
                                           "batch_dot"))


def _one_hot(tr, node, indices, num_classes):
    """``indices[..., None] == arange(n)``: out-of-range indices give zero rows, as in
    graphspec (ONNX's OneHot would wrap negative indices around)."""
    b = tr.b
    idx = tr.tensor(indices)
    idx_name = b.op("Round", [idx.name], "rounded") if idx.dtype.kind == "f" else idx.name
    idx_name = b.unsqueeze(b.cast(idx_name, np.int64, "indices"), [-1], "indices_col")
    n = num_classes.name if isinstance(num_classes, Sym) else \
        b.scalar(int(num_classes), np.int64, "classes")
    classes = b.op("Range", [b.scalar(0, np.int64), n, b.scalar(1, np.int64)], "classes")
    hits = b.op("Equal", [idx_name, classes], "hits")
    shape, dtype = tr.probe(node)
    return T(b.cast(hits, dtype, "one_hot"), shape, dtype)


def _permute_dimensions(tr, node, x, pattern):
    pattern = tr.concrete(pattern, node, "pattern")
    return _out(tr, node, tr.b.transpose(tr.tensor(x).name, pattern, "permuted"))


def _expand_dims(tr, node, x, axis):
    x = tr.tensor(x)
    axis = as_axis(tr.concrete(axis, node, "axis"), x.ndim + 1)
    return _out(tr, node, tr.b.unsqueeze(x.name, [axis], "expanded"))


def _squeeze(tr, node, x, axis):
    x = tr.tensor(x)
    axis = as_axis(tr.concrete(axis, node, "axis"), x.ndim)
    return _out(tr, node, tr.b.squeeze(x.name, [axis], "squeezed"))


def _gather(tr, node, reference, indices):
    ref = tr.tensor(reference)
    if isinstance(indices, T):
        idx = tr.as_dtype(indices, np.int64)
    else:
        idx = tr.b.const(np.asarray(indices).astype(np.int64), "gather_indices")
    return _out(tr, node, tr.b.op("Gather", [ref.name, idx], "gathered", axis=0))


def _tensor_list(tr, tensors) -> list:
    like = next((v for v in tensors if isinstance(v, T) and v.dtype.kind == "f"), None)
    return [tr.tensor(v, like=like) for v in tensors]


def _concatenate(tr, node, tensors, axis):
    tensors = _tensor_list(tr, tensors)
    shape, dtype = tr.probe(node)
    names = [tr.as_dtype(t, dtype) for t in tensors]
    axis = as_axis(tr.concrete(axis, node, "axis"), tensors[0].ndim)
    return T(tr.b.op("Concat", names, "concatenated", axis=axis), shape, dtype)


def _stack(tr, node, tensors, axis):
    tensors = _tensor_list(tr, tensors)
    shape, dtype = tr.probe(node)
    axis = as_axis(tr.concrete(axis, node, "axis"), tensors[0].ndim + 1)
    names = [tr.b.unsqueeze(tr.as_dtype(t, dtype), [axis], "stacked_item") for t in tensors]
    return T(tr.b.op("Concat", names, "stacked", axis=axis), shape, dtype)


def _reshape(tr, node, x, shape):
    dims = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
    # ONNX's Reshape reads a 0 as "copy this axis" unless allowzero (opset 14)
    zero = any(not isinstance(d, Sym) and int(d) == 0 for d in dims)
    if zero and tr.b.opset < 14:
        tr.fail(node, "reshape to a size-0 axis needs opset 14 or later (--opset 14)")
    return _out(tr, node, tr.b.op("Reshape", [tr.tensor(x).name, tr.shape_tensor(dims)],
                                  "reshaped", allowzero=1 if zero else None))


def _reduction(op_type):
    def convert(tr, node, x, axis, keepdims):
        x = tr.tensor(x)
        axes = as_axes(tr.concrete(axis, node, "axis"), x.ndim)
        return _out(tr, node, tr.b.reduce(op_type, x.name, axes, bool(keepdims),
                                          op_type[6:].lower()))
    return convert


def _random(op_type, first: str, second: str):
    def convert(tr, node, shape, a, c):
        dims = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        out_shape, dtype = tr.probe(node)
        zeros = tr.b.op("ConstantOfShape", [tr.shape_tensor(dims)], "noise_shape")
        name = tr.b.op(op_type, [zeros], "noise", dtype=_onnx_type(dtype),
                       **{first: float(a), second: float(c)})
        return T(name, out_shape, dtype)
    return convert


def _onnx_type(dtype) -> int:
    from .onnx_builder import onnx_dtype
    return onnx_dtype(dtype)


def _shape(tr, node, x):
    """A tuple: known sizes as ints, the others (the batch) as run-time Syms."""
    x = tr.tensor(x)
    dims, full = [], None
    for axis, d in enumerate(x.shape):
        if d is not None:
            dims.append(int(d))
            continue
        full = full or tr.b.op("Shape", [x.name], "shape_of")
        dims.append(Sym(tr.b.op("Gather", [full, tr.b.scalar(axis, np.int64)], "dim", axis=0),
                        np.dtype(np.int64)))
    return tuple(dims)


FUNCTIONS = {
    "abs": _unary("Abs"), "exp": _unary("Exp"), "log": _unary("Log"),
    "sqrt": _unary("Sqrt"), "square": _square, "sign": _unary("Sign"),
    "relu": _unary("Relu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"),
    "softplus": _unary("Softplus"), "selu": _unary("Selu"), "gelu": _gelu,
    "stop_gradient": _unary("Identity"), "elu": _elu,
    "softmax": _softmax("Softmax"), "log_softmax": _softmax("LogSoftmax"),
    "l2_normalize": _l2_normalize, "clip": _clip,
    "maximum": _elementwise("Max"), "minimum": _elementwise("Min"),
    "dot": _dot, "batch_dot": _batch_dot, "one_hot": _one_hot,
    "permute_dimensions": _permute_dimensions, "expand_dims": _expand_dims,
    "squeeze": _squeeze, "gather": _gather, "concatenate": _concatenate, "stack": _stack,
    "reshape": _reshape, "sum": _reduction("ReduceSum"), "mean": _reduction("ReduceMean"),
    "max": _reduction("ReduceMax"), "min": _reduction("ReduceMin"),
    "random_normal": _random("RandomNormalLike", "mean", "scale"),
    "random_uniform": _random("RandomUniformLike", "low", "high"),
    "shape": _shape, "int_shape": _shape,
}


# -- operators ------------------------------------------------------------------------------
def tensor_binary(tr, node, op_type: str, a, b) -> T:
    """An elementwise op on two values as the evaluator's ``tensor_pair`` pairs them,
    both cast to the dtype graphspec's result has (numpy's promotion)."""
    a, b = tr.pair(a, b)
    shape, dtype = tr.probe(node)
    name = tr.b.op(op_type, [tr.as_dtype(a, dtype), tr.as_dtype(b, dtype)], op_type.lower())
    return T(name, shape, dtype)


_TENSOR_OPS = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.Div: "Div",
               ast.Pow: "Pow", ast.MatMult: "MatMul"}


def tensor_op(tr, node, op, a, b):
    if op in _TENSOR_OPS:
        return tensor_binary(tr, node, _TENSOR_OPS[op], a, b)
    a, b = tr.pair(a, b)
    shape, dtype = tr.probe(node)
    x, y = tr.as_dtype(a, dtype), tr.as_dtype(b, dtype)
    quotient = _floor_div(tr.b, x, y, dtype)
    if op is ast.FloorDiv:
        return T(quotient, shape, dtype)
    if dtype.kind in "iu":                          # a % b with the divisor's sign
        return T(tr.b.op("Mod", [x, y], "mod", fmod=0), shape, dtype)
    product = tr.b.op("Mul", [quotient, y], "mod_product")
    return T(tr.b.op("Sub", [x, product], "mod"), shape, dtype)


def _floor_div(b, x: str, y: str, dtype) -> str:
    if np.dtype(dtype).kind in "iu":               # exact: (a - a mod b) / b
        rest = b.op("Sub", [x, b.op("Mod", [x, y], "rest", fmod=0)], "divisible")
        return b.op("Div", [rest, y], "floor_div")
    return b.op("Floor", [b.op("Div", [x, y], "quotient")], "floor_div")


def number_op(tr, node, op, a, c):
    """Python number arithmetic; with a run-time Sym it becomes rank-0 ONNX arithmetic."""
    if a is None or c is None:
        return None
    if not isinstance(a, Sym) and not isinstance(c, Sym):
        return _python_op(tr, node, op, a, c)
    floats = op is ast.Div or any(isinstance(v, float) or (isinstance(v, Sym) and
                                                           v.dtype.kind == "f") for v in (a, c))
    dtype = np.dtype(np.float64 if floats else np.int64)
    x, y = (_sym_name(tr, v, dtype) for v in (a, c))
    if op is ast.FloorDiv:
        name = _floor_div(tr.b, x, y, dtype)
    elif op is ast.Mod:
        name = tr.b.op("Mod", [x, y], "mod", fmod=0 if dtype.kind == "i" else 1)
        if dtype.kind == "f":
            tr.fail(node, "'%' of non-integers that depend on the batch size has no ONNX "
                          "translation here")
    elif op in _TENSOR_OPS and op is not ast.MatMult:
        name = tr.b.op(_TENSOR_OPS[op], [x, y], "sym")
    else:
        tr.fail(node, "'@' needs tensors, not numbers")
    return Sym(name, dtype)


def _sym_name(tr, value, dtype) -> str:
    if isinstance(value, Sym):
        return value.name if value.dtype == dtype else tr.b.cast(value.name, dtype, "sym")
    return tr.b.scalar(value, dtype)


def _python_op(tr, node, op, a, c):
    import operator
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
    if op not in ops:
        tr.fail(node, "'@' needs tensors, not numbers")
    return ops[op](a, c)
