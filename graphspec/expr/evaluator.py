"""Evaluate a validated expression by walking its syntax tree.

Every node kind the parser allows has one handler here, and no other kind is evaluated
(a tree that bypassed the parser still cannot reach an attribute or a builtin). Values
are of four sorts:

- tensors: :class:`~graphspec.autodiff.Variable` (inputs, results of ops) and constant
  numpy arrays (bound constants), combined through :mod:`graphspec.ops` so that the tape
  records them;
- Python numbers (literals, ``batch``, shape entries), combined with Python arithmetic
  under size limits; ``None`` is an unknown dimension and stays unknown (``None // 2``);
- tuples (shapes: ``shape(x)[1:]``, ``(s[0], s[1] // 2)``);
- lists (several inputs ``x``, list literals ``[x[0], x[1]]``): indexed, never computed on.

A number meeting a tensor becomes a constant of the tensor's dtype, so float32 stays
float32.
"""
from __future__ import annotations

import ast
import operator

import numpy as np

from .. import ops
from ..autodiff.engine import Variable
from .error import ExprError
from .functions import (FUNCTIONS, EvalContext, check_size, describe, integer_indices,
                        is_int, is_number, tensor_pair, to_tensor)
from .grammar import BATCH, BINARY_OPERATORS, CONSTANTS, MAX_INT_BITS

_NUMBER_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv, ast.Pow: operator.pow,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_TENSOR_OPS = {ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div,
               ast.Pow: ops.power, ast.MatMult: ops.matmul}
_ERRORS = (ValueError, TypeError, IndexError, ArithmeticError, MemoryError)


def evaluate(expression, bindings: dict, rng: np.random.Generator | None = None,
             dtype=None):
    """The value of ``expression`` (a :class:`~graphspec.expr.parser.Expression`).

    ``bindings`` maps the expression's names to values: Variables, numpy arrays
    (constants), numbers, tuples, or lists of Variables. ``batch`` is bound to the
    first axis of the first tensor binding unless given. ``rng`` feeds
    ``random_normal``/``random_uniform``; ``dtype`` is the float dtype of constants and
    random tensors (default: that of the first float Variable bound, else float32).
    Returns a Variable, a number, a tuple or a list; raises :class:`ExprError`.
    """
    dtype = np.dtype(dtype) if dtype is not None else _float_dtype(bindings)
    return _Evaluator(expression, bindings, EvalContext(rng, dtype)).visit(
        expression.tree.body)


def _float_dtype(bindings: dict) -> np.dtype:
    for value in bindings.values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, Variable) and item.dtype.kind == "f":
                return item.dtype
    return np.dtype(np.float32)


def _is_scalar(value) -> bool:
    return value is None or is_number(value)


def _is_tensor(value) -> bool:
    return isinstance(value, (Variable, np.ndarray))


def _is_array_like(value) -> bool:
    if _is_tensor(value) or is_number(value):
        return True
    return isinstance(value, (list, tuple)) and all(_is_array_like(v) and not _is_tensor(v)
                                                    for v in value)


class _Evaluator:
    def __init__(self, expression, bindings: dict, ctx: EvalContext):
        self.expression, self.bindings, self.ctx = expression, bindings, ctx
        self.handlers = {ast.Constant: self.constant, ast.Name: self.name,
                         ast.BinOp: self.binop, ast.UnaryOp: self.unary,
                         ast.Call: self.call, ast.Subscript: self.subscript,
                         ast.Tuple: self.sequence, ast.List: self.sequence}

    def fail(self, node, message: str):
        raise ExprError(message, self.expression.column_of(node))

    def visit(self, node):
        handler = self.handlers.get(type(node))
        if handler is None:
            self.fail(node, f"{type(node).__name__} is not allowed in expressions")
        return handler(node)

    # -- leaves ---------------------------------------------------------------------------
    def constant(self, node):
        value = node.value
        if value is None or value is Ellipsis or (is_number(value) and not isinstance(
                value, complex)):
            return value
        self.fail(node, f"constant {value!r} is not allowed in expressions")

    def name(self, node):
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.bindings:
            value = self.bindings[name]
        elif name == BATCH:
            value = self.batch_size(node)
        else:
            self.fail(node, f"name '{name}' has no value here")
        return value.item() if isinstance(value, np.generic) else value

    def batch_size(self, node) -> int:
        for value in self.bindings.values():
            for item in value if isinstance(value, list) else (value,):
                if isinstance(item, Variable) and item.data.ndim >= 1:
                    return int(item.shape[0])
        self.fail(node, "'batch' is not known here: no tensor with a batch axis is bound")

    def sequence(self, node):
        items = [self.visit(item) for item in node.elts]
        return tuple(items) if type(node) is ast.Tuple else items

    # -- operators ------------------------------------------------------------------------
    def binop(self, node):
        a, b = self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if _is_scalar(a) and _is_scalar(b):
            return self.number_op(node, op, a, b)
        if op is ast.Add and isinstance(a, tuple) and isinstance(b, tuple):
            return a + b  # shape arithmetic: s[:1] + (5,)
        if (_is_tensor(a) or _is_tensor(b)) and _is_array_like(a) and _is_array_like(b):
            return self.tensor_op(node, op, a, b)
        symbol = BINARY_OPERATORS[op]
        hint = ""
        if any(isinstance(v, list) and v and isinstance(v[0], Variable) for v in (a, b)):
            hint = "; x is a list of input tensors here: pick one with x[0], x[1], ..."
        self.fail(node, f"operator '{symbol}' cannot combine {describe(a)} and "
                        f"{describe(b)}{hint}")

    def number_op(self, node, op, a, b):
        symbol = BINARY_OPERATORS[op]
        if op is ast.MatMult:
            self.fail(node, "'@' (matrix product) needs tensors, not numbers")
        if a is None or b is None:
            return None  # an unknown dimension stays unknown
        if op is ast.Pow and is_int(a) and is_int(b) and b > 0 and abs(a) > 1 \
                and b * (abs(int(a)).bit_length() - 1) > MAX_INT_BITS:
            self.fail(node, f"integer power {a} ** {b} is too large (more than "
                            f"{MAX_INT_BITS} bits)")
        try:
            value = _NUMBER_OPS[op](a, b)
        except ZeroDivisionError:
            self.fail(node, f"division by zero in '{symbol}'")
        except (OverflowError, ValueError, TypeError) as exc:
            self.fail(node, f"'{symbol}' on {a!r} and {b!r}: {exc}")
        if isinstance(value, complex):
            self.fail(node, f"{a!r} {symbol} {b!r} is a complex number")
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            self.fail(node, f"integer result of '{symbol}' is too large (more than "
                            f"{MAX_INT_BITS} bits)")
        return value

    def tensor_op(self, node, op, a, b):
        symbol = BINARY_OPERATORS[op]
        try:
            a, b = tensor_pair(a, b, self.ctx, what=f"operand of '{symbol}'")
        except ValueError as exc:
            self.fail(node, str(exc))
        try:
            if op is ast.MatMult:
                if a.data.ndim == 0 or b.data.ndim == 0:
                    raise ValueError("'@' needs tensors with at least one axis")
                rows = a.shape[-2:-1] if a.data.ndim >= 2 else ()
                cols = b.shape[-1:] if b.data.ndim >= 2 else ()
                check_size(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + rows + cols,
                           "the result")
            else:
                try:
                    out_shape = np.broadcast_shapes(a.shape, b.shape)
                except ValueError:
                    raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                                     "broadcast together") from None
                check_size(out_shape, "the result")
            if op is ast.FloorDiv:  # piecewise constant: no gradient
                return Variable(np.floor_divide(a.data, b.data))
            if op is ast.Mod:  # a - floor(a / b) * b, differentiable in a and b
                return ops.sub(a, ops.mul(Variable(np.floor_divide(a.data, b.data)), b))
            if op is ast.MatMult and b.data.ndim == 1:
                return ops.dot(a, b)  # ops.matmul's backward wants a 2-D right operand
            return _TENSOR_OPS[op](a, b)
        except _ERRORS as exc:
            self.fail(node, f"'{symbol}': {exc}")

    def unary(self, node):
        value = self.visit(node.operand)
        negate = type(node.op) is ast.USub
        if value is None:
            return None
        if is_number(value):
            return -value if negate else value
        if _is_tensor(value):
            value = self.tensor(value)
            return ops.neg(value) if negate else value
        self.fail(node, f"unary '{'-' if negate else '+'}' cannot apply to {describe(value)}")

    def tensor(self, value) -> Variable:
        """A bound constant array as a Variable: floats in the float dtype, ints kept."""
        if isinstance(value, np.ndarray) and value.dtype.kind in "biu":
            return Variable(value)
        return to_tensor(value, self.ctx)

    # -- calls ----------------------------------------------------------------------------
    def call(self, node):
        func = node.func
        if type(func) is not ast.Name or func.id not in FUNCTIONS:
            self.fail(node, "only functions from the table can be called")
        spec = FUNCTIONS[func.id]
        args = [self.visit(arg) for arg in node.args]
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in spec.params:
                self.fail(node, f"{spec.name}() has no such argument: {spec.signature()}")
            kwargs[keyword.arg] = self.visit(keyword.value)
        try:
            values = spec.bind(args, kwargs)
        except KeyError:
            self.fail(node, f"{spec.name}() is missing arguments: {spec.signature()}")
        try:
            return spec.impl(self.ctx, *values)
        except _ERRORS as exc:
            self.fail(node, f"{spec.name}(): {exc}")

    # -- subscripts -----------------------------------------------------------------------
    def subscript(self, node):
        value = self.visit(node.value)
        items = node.slice.elts if type(node.slice) is ast.Tuple else None
        index = tuple(self.index_item(i) for i in items) if items is not None \
            else self.index_item(node.slice)
        if isinstance(value, (list, tuple)):
            return self.index_sequence(node, value, index)
        if _is_tensor(value):
            return self.index_tensor(node, self.tensor(value), index)
        self.fail(node, f"cannot index {describe(value)}")

    def index_item(self, node):
        if type(node) is ast.Slice:
            return slice(*(None if part is None else self.slice_bound(part)
                           for part in (node.lower, node.upper, node.step)))
        value = self.visit(node)
        if value is None or value is Ellipsis:
            return value
        if is_int(value):
            return int(value)
        if isinstance(value, (list, np.ndarray, Variable)):
            try:
                return integer_indices(value, "an index array")
            except ValueError as exc:
                self.fail(node, str(exc))
        self.fail(node, f"an index must be an integer, a slice, None, ... or a list of "
                        f"integers, got {describe(value)}")

    def slice_bound(self, node):
        value = self.visit(node)
        if value is None or is_int(value):
            return value
        self.fail(node, f"slice bounds must be integers, got {describe(value)}")

    def index_sequence(self, node, sequence, index):
        if not isinstance(index, (int, slice)):
            self.fail(node, f"{describe(sequence)} takes one integer index or a slice, "
                            "e.g. x[0]")
        try:
            return sequence[index]
        except IndexError:
            self.fail(node, f"index {index} is out of range for {describe(sequence)}")
        except ValueError as exc:  # slice step 0
            self.fail(node, str(exc))

    def index_tensor(self, node, tensor: Variable, index):
        items = index if isinstance(index, tuple) else (index,)
        try:
            arrays = [i for i in items if isinstance(i, np.ndarray)]
            if arrays:
                check_size(_advanced_index_bound(tensor.shape, items, arrays), "the result")
            return ops.getitem(tensor, index)
        except _ERRORS as exc:
            self.fail(node, f"cannot index a tensor of shape {tuple(tensor.shape)} in "
                            f"{self.expression.source_of(node)}: {exc}")


def _advanced_index_bound(shape, items, arrays) -> tuple:
    """An upper bound on the size of ``tensor[items]`` with integer-array items: the
    broadcast index shape times the axes the arrays do not consume."""
    consuming = sum(1 for i in items if i is not None and i is not Ellipsis)
    axis, consumed = 0, 1
    for item in items:
        if item is None:
            continue
        if item is Ellipsis:
            axis += len(shape) - consuming
            continue
        if isinstance(item, np.ndarray) and axis < len(shape):
            consumed *= max(int(shape[axis]), 1)
        axis += 1
    index_shape = np.broadcast_shapes(*(a.shape for a in arrays))
    rest = int(np.prod(shape, dtype=np.float64)) // consumed
    return tuple(index_shape) + (rest,)
