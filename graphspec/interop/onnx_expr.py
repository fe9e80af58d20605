"""Lambda and Merge expressions -> ONNX nodes, by walking the same syntax tree the
evaluator walks (``graphspec/expr/evaluator.py``), one handler per node kind.

Values while walking:

- :class:`T`: an ONNX tensor, with the shape (None for the batch and other sizes only
  known at run time) and dtype graphspec's evaluator gives that sub-expression;
- :class:`Sym`: a number only known at run time (``batch``, ``shape(x)[0]``), a rank-0
  int64 (or float64) ONNX tensor, so ``reshape(x, (batch, 5, 2))`` keeps a symbolic
  batch in the exported graph;
- Python numbers, None, ``...``, tuples and lists, and the layer's constant arrays, as
  in the evaluator.

Shapes and dtypes are not re-derived here: each tensor-valued sub-expression is run
through graphspec's own evaluator on zeros at two batch sizes (as Lambda's shape
inference does), so broadcasting, dtype promotion and every argument check are the
evaluator's. Function calls are looked up by name in ``onnx_functions.FUNCTIONS``.
"""
from __future__ import annotations

import ast

import numpy as np

from ..autodiff import Variable
from ..expr import ExprError, parse_expression
from .onnx_values import Sym, T  # noqa: F401 - re-exported for converters

_PROBES = ((2, 1), (5, 3))     # (batch, size of unknown feature axes) of the two runs
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class Refused(ExprError):
    """A construct with no ONNX translation (the message says what to write instead)."""


def _constants(config) -> dict:
    return {k: (np.array(v) if isinstance(v, list) else v)
            for k, v in (config.get("constants") or {}).items()}


def parse_layer_expression(layer):
    """The layer's expression, parsed from its config (public data) again."""
    names = {"x", "inputs"} | set(layer.config.get("constants") or {})
    return parse_expression(layer.config["expr"], names)


def expression_refusal(layer, node=None) -> str | None:
    from .onnx_functions import FUNCTION_REFUSALS
    refused = sorted(f for f in parse_layer_expression(layer).functions
                     if f in FUNCTION_REFUSALS)
    if refused:
        name = refused[0]
        return f"expression function {name}() has no ONNX form: {FUNCTION_REFUSALS[name]}"
    return None


def lambda_layer(c):
    """Lambda and Merge: the expression's value, cast to the node's declared dtype."""
    expression = parse_layer_expression(c.layer)
    translator = Translator(c, expression)
    try:
        value = translator.visit(expression.tree.body)
    except ExprError as err:
        raise ExprError(f"{c.layer.TYPE} layer '{c.layer.name}' cannot be exported to ONNX: "
                        f"expr: {err.message} (column {err.col + 1})", err.col) from None
    if not isinstance(value, T):
        value = translator.tensor(value)
    b = c.builder
    if value.dtype != b.float_dtype:
        return [b.cast(value.name, b.float_dtype, c.hint)]
    return [b.op("Identity", [value.name], c.hint)]


class Translator:
    def __init__(self, call, expression):
        self.b, self.call, self.expression = call.builder, call, expression
        constants = _constants(call.layer.config)
        inputs = [T(n, tuple(s), np.dtype(d)) for n, s, d in
                  zip(call.inputs, call.input_shapes, call.input_dtypes)]
        value = inputs[0] if len(inputs) == 1 else inputs
        self.bindings = dict(constants, x=value, inputs=value)
        self.names = {"x", "inputs"} | set(constants)
        floats = [t.dtype for t in inputs if t.dtype.kind == "f"]
        self.float_dtype = floats[0] if floats else np.dtype(np.float32)
        self.probe_bindings = [self._dummies(inputs, constants, batch, fill)
                               for batch, fill in _PROBES]
        self.handlers = {ast.Constant: self.constant, ast.Name: self.name,
                         ast.BinOp: self.binop, ast.UnaryOp: self.unary,
                         ast.Call: self.call_function, ast.Subscript: self.subscript,
                         ast.Tuple: self.sequence, ast.List: self.sequence}

    # -- probes: graphspec's own evaluator on zeros ----------------------------------------
    @staticmethod
    def _dummies(inputs, constants, batch, fill) -> dict:
        arrays = [Variable(np.zeros((batch,) + tuple(fill if d is None else d
                                                     for d in t.shape[1:]), t.dtype))
                  for t in inputs]
        value = arrays[0] if len(arrays) == 1 else arrays
        return dict(constants, x=value, inputs=value, batch=batch)

    def probe(self, node) -> tuple:
        """(shape with None where the two runs differ, dtype) of a tensor sub-expression."""
        sub = parse_expression(self.expression.source_of(node), self.names)
        runs = []
        for bindings in self.probe_bindings:
            with np.errstate(all="ignore"):
                value = sub.evaluate(bindings, np.random.default_rng(0))
            runs.append(value.data if isinstance(value, Variable) else np.asarray(value))
        first, second = runs
        if first.ndim != second.ndim:
            raise Refused("the rank of a sub-expression depends on the batch size",
                          self.expression.column_of(node))
        shape = tuple(a if a == b else None for a, b in zip(first.shape, second.shape))
        return shape, first.dtype

    def result(self, node, name: str) -> T:
        shape, dtype = self.probe(node)
        return T(name, shape, dtype)

    def fail(self, node, message: str):
        raise Refused(message, self.expression.column_of(node))

    # -- conversions --------------------------------------------------------------------------
    def tensor(self, value, like: T | None = None) -> T:
        """A T for ``value``; constants take ``like``'s dtype as ``to_tensor`` does."""
        if isinstance(value, T):
            return value
        if isinstance(value, Sym):
            target = like.dtype if like is not None else self.float_dtype
            if like is not None and like.dtype.kind in "iu" and value.dtype.kind == "f":
                target = self.float_dtype
            return T(self.b.cast(value.name, target, "sym_as_tensor"), (), np.dtype(target))
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise Refused(f"{value!r} is not a tensor or numbers")
        if like is not None and like.dtype.kind in "iu" and array.dtype.kind in "biu":
            target = like.dtype
        elif like is not None and like.dtype.kind == "f":
            target = like.dtype
        elif isinstance(value, np.ndarray) and array.dtype.kind in "biu" and like is None:
            target = array.dtype        # a bound integer constant stays integer
        else:
            target = self.float_dtype
        array = array.astype(target)
        return T(self.b.const(array, "expr_const"), array.shape, array.dtype)

    def pair(self, a, b) -> tuple:
        if isinstance(a, T):
            return a, self.tensor(b, like=a)
        if isinstance(b, T):
            return self.tensor(a, like=b), b
        a = self.tensor(a)
        return a, self.tensor(b, like=a)

    def as_dtype(self, t: T, dtype) -> str:
        return t.name if t.dtype == np.dtype(dtype) else self.b.cast(t.name, dtype, "promoted")

    def concrete(self, value, node, what: str):
        """A value that must be known when exporting (axes, slice bounds...)."""
        if isinstance(value, Sym) or (isinstance(value, (tuple, list)) and
                                      any(isinstance(v, Sym) for v in value)):
            self.fail(node, f"{what} depends on the batch size at run time; ONNX needs it "
                            "fixed here")
        return value

    def shape_tensor(self, dims) -> str:
        """A 1-D int64 shape from ints and Syms: ``(batch, 5, 2)``."""
        parts, run = [], []
        for d in dims:
            if isinstance(d, Sym):
                if run:
                    parts.append(self.b.i64(run))
                    run = []
                parts.append(self.b.unsqueeze(self.sym_int(d), [0], "dim"))
            else:
                run.append(int(d))
        if run:
            parts.append(self.b.i64(run))
        return parts[0] if len(parts) == 1 else self.b.op("Concat", parts, "shape", axis=0)

    def sym_int(self, value: Sym) -> str:
        return value.name if value.dtype.kind in "iu" else self.b.cast(value.name, np.int64)

    # -- leaves ---------------------------------------------------------------------------
    def visit(self, node):
        handler = self.handlers.get(type(node))
        if handler is None:
            self.fail(node, f"{type(node).__name__} is not allowed in expressions")
        return handler(node)

    def constant(self, node):
        return node.value

    def name(self, node):
        from ..expr import CONSTANTS
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name == "batch":
            first = self.bindings["x"] if isinstance(self.bindings["x"], T) \
                else self.bindings["x"][0]
            return Sym(self.b.squeeze(self.b.batch_of(first.name), [0], "batch_size"),
                       np.dtype(np.int64))
        value = self.bindings[name]
        return value.item() if isinstance(value, np.generic) else value

    def sequence(self, node):
        items = [self.visit(item) for item in node.elts]
        return tuple(items) if type(node) is ast.Tuple else items

    # -- operators ------------------------------------------------------------------------
    def binop(self, node):
        from .onnx_functions import number_op, tensor_op
        a, b = self.visit(node.left), self.visit(node.right)
        scalar = lambda v: v is None or isinstance(v, (int, float, Sym))  # noqa: E731
        if scalar(a) and scalar(b):
            return number_op(self, node, type(node.op), a, b)
        if type(node.op) is ast.Add and isinstance(a, tuple) and isinstance(b, tuple):
            return a + b
        return tensor_op(self, node, type(node.op), a, b)

    def unary(self, node):
        value = self.visit(node.operand)
        negate = type(node.op) is ast.USub
        if value is None or isinstance(value, (int, float)):
            return -value if negate and value is not None else value
        if isinstance(value, Sym):
            return Sym(self.b.op("Neg", [value.name], "neg"), value.dtype) if negate else value
        t = self.tensor(value)
        return T(self.b.op("Neg", [t.name], "neg"), t.shape, t.dtype) if negate else t

    def call_function(self, node):
        from .onnx_functions import FUNCTIONS as CONVERTERS
        from ..expr import FUNCTIONS
        spec = FUNCTIONS[node.func.id]
        args = [self.visit(arg) for arg in node.args]
        kwargs = {k.arg: self.visit(k.value) for k in node.keywords}
        return CONVERTERS[spec.name](self, node, *spec.bind(args, kwargs))

    # -- subscripts -------------------------------------------------------------------------
    def subscript(self, node):
        value = self.visit(node.value)
        items = node.slice.elts if type(node.slice) is ast.Tuple else [node.slice]
        index = [self.index_item(i) for i in items]
        if isinstance(value, (list, tuple)):
            if len(index) != 1 or isinstance(index[0], (Sym, T)):
                self.fail(node, "a list or tuple takes one fixed integer index or a slice")
            return value[index[0]]
        return self.index_tensor(node, self.tensor(value), index)

    def index_item(self, node):
        if type(node) is ast.Slice:
            parts = [None if p is None else self.concrete(self.visit(p), p, "a slice bound")
                     for p in (node.lower, node.upper, node.step)]
            return slice(*parts)
        value = self.visit(node)
        if isinstance(value, list) or isinstance(value, np.ndarray):
            array = np.asarray(value)
            return T(self.b.const(array.astype(np.int64), "index"), array.shape,
                     np.dtype(np.int64))
        return self.concrete(value, node, "an index")

    def index_tensor(self, node, t: T, index: list):
        arrays = [i for i in index if isinstance(i, T)]
        if arrays and (len(arrays) > 1 or any(isinstance(i, int) or i is None for i in index)):
            self.fail(node, "indexing with an integer list together with integers, None or "
                            "other lists has no ONNX translation here; split it into two "
                            "subscripts")
        consuming = sum(1 for i in index if i is not None and i is not Ellipsis)
        axis, out_axis, slices, picks, new_axes, gather = 0, 0, [], [], [], None
        for item in index:
            if item is Ellipsis:
                covered = t.ndim - consuming
                axis, out_axis = axis + covered, out_axis + covered
            elif item is None:
                new_axes.append(out_axis)
                out_axis += 1
            elif isinstance(item, slice):
                if item != slice(None):
                    slices.append((axis,) + _slice_bounds(item))
                axis, out_axis = axis + 1, out_axis + 1
            elif isinstance(item, T):
                gather = (axis, item)
                axis, out_axis = axis + 1, out_axis + item.ndim
            else:
                picks.append((axis, int(item)))
                axis += 1
        name = t.name
        if slices:
            ax, starts, ends, steps = zip(*slices)
            name = self.b.slice(name, starts, ends, ax, steps, "sliced")
        for ax, i in sorted(picks, reverse=True):
            name = self.b.op("Gather", [name, self.b.const(np.int64(i), "pick")], "picked",
                             axis=ax)
        if gather is not None:
            indices = self.as_dtype(gather[1], np.int64)
            name = self.b.op("Gather", [name, indices], "gathered", axis=gather[0])
        if new_axes:
            name = self.b.unsqueeze(name, new_axes, "new_axis")
        return self.result(node, name)


def _slice_bounds(item: slice) -> tuple:
    """ONNX Slice (start, end, step) for a Python slice with fixed bounds."""
    step = 1 if item.step is None else int(item.step)
    if step == 0:
        raise Refused("slice step cannot be zero")
    if step > 0:
        start = 0 if item.start is None else item.start
        end = _INT64_MAX if item.stop is None else item.stop
    else:
        start = _INT64_MAX if item.start is None else item.start
        end = _INT64_MIN if item.stop is None else item.stop
    return int(start), int(end), step
