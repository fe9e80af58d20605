"""The functions an expression may call: a closed table, by name.

Each entry maps a name to a Python function of *already evaluated* arguments. Tensors
are :class:`~graphspec.autodiff.Variable` objects and every tensor computation comes
from :mod:`graphspec.ops`, so gradients flow through an expression exactly as through a
layer. Nothing here can reach Python's builtins, attributes, imports or files: a name
that is not in :data:`FUNCTIONS` cannot be called at all (the parser refuses it before
anything runs), and every argument is checked for type and size before numpy sees it.

Keras backend names and argument names are kept (``K.sum(x, axis=1, keepdims=True)``
reads the same here), so a Lambda body ports over by dropping the ``K.`` prefix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import ops
from ..autodiff.engine import Variable

# A cap on the elements of any tensor an expression creates (random tensors, one-hot
# encodings, broadcast results, products): 2**28 float32 values is 1 GiB. A spec asking
# for more is refused before numpy allocates anything.
MAX_ELEMENTS = 1 << 28
MAX_DIM = 1 << 24
MAX_RANK = 32


@dataclass
class EvalContext:
    """What functions need besides their arguments."""
    rng: np.random.Generator | None = None
    float_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))


# -- describing and checking values -------------------------------------------------------
def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating))


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def describe(value) -> str:
    """A short description of a value for error messages."""
    if isinstance(value, Variable):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a constant array of shape {value.shape}"
    if value is None:
        return "None (an unknown dimension)"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if is_number(value):
        return f"the number {value!r}"
    if isinstance(value, tuple):
        return f"the tuple {value!r}" if len(value) <= 8 else f"a tuple of {len(value)} items"
    if isinstance(value, list):
        if value and all(isinstance(v, Variable) for v in value):
            return f"a list of {len(value)} tensors"
        return f"a list of {len(value)} items"
    if isinstance(value, slice):
        return "a slice"
    return f"a value of type {type(value).__name__}"


def check_size(shape, what: str) -> None:
    """Refuse a tensor of ``shape`` that would exceed :data:`MAX_ELEMENTS`."""
    count = 1
    for dim in shape:
        count *= int(dim)
    if count > MAX_ELEMENTS:
        raise ValueError(f"{what} of shape {tuple(int(d) for d in shape)} would hold "
                         f"{count} elements; the limit is {MAX_ELEMENTS}")


def to_tensor(value, ctx: EvalContext, like: Variable | None = None,
              what: str = "argument") -> Variable:
    """A Variable for ``value``; numbers and constant arrays become constants.

    Constants take the dtype of ``like`` (the tensor they are combined with) when that
    is a float, else the context's float dtype, so ``x * 0.5`` on float32 stays float32
    instead of being promoted to float64 by numpy.
    """
    if isinstance(value, Variable):
        return value
    if isinstance(value, (list, tuple)) and not _all_numbers(value):
        raise ValueError(f"{what} must be a tensor or numbers, got {describe(value)}")
    if not (is_number(value) or isinstance(value, (np.ndarray, list, tuple))):
        raise ValueError(f"{what} must be a tensor or a number, got {describe(value)}")
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{what} is not a rectangular array of numbers: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold numbers, got {describe(value)}")
    check_size(array.shape, what)
    target = like.dtype if like is not None else None
    if target is not None and target.kind in "iu" and array.dtype.kind in "biu":
        return Variable(array.astype(target))
    if target is not None and target.kind == "f":
        return Variable(array.astype(target))
    return Variable(array.astype(ctx.float_dtype))


def tensor_pair(a, b, ctx: EvalContext, what: str = "operand"):
    """Two Variables for a binary op; a constant side takes the other side's dtype."""
    if isinstance(a, Variable):
        return a, to_tensor(b, ctx, like=a, what=what)
    if isinstance(b, Variable):
        return to_tensor(a, ctx, like=b, what=what), b
    a = to_tensor(a, ctx, what=what)
    return a, to_tensor(b, ctx, like=a, what=what)


def _all_numbers(items) -> bool:
    stack, seen = [items], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_ELEMENTS:
            return False
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif not is_number(item):
            return False
    return True


def as_int(value, what: str, low: int | None = None, high: int | None = None) -> int:
    if not is_int(value):
        raise ValueError(f"{what} must be an integer, got {describe(value)}")
    value = int(value)
    if low is not None and value < low or high is not None and value > high:
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{what} must be {bounds}, got {value}")
    return value


def as_float(value, what: str) -> float:
    if not is_number(value) or isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {describe(value)}")
    return float(value)


def as_axis(value, ndim: int, what: str = "axis") -> int:
    """One axis of a rank-``ndim`` tensor, negative counted from the end."""
    axis = as_int(value, what)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} is out of range for a tensor of rank {ndim} "
                         f"(valid: {-ndim}..{ndim - 1}, the batch axis is 0)")
    return axis % ndim


def as_axes(value, ndim: int):
    """None, one axis or a list/tuple of distinct axes (for reductions)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        axes = tuple(as_axis(v, ndim) for v in value)
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis {tuple(value)} repeats an axis")
        return axes
    return as_axis(value, ndim)


def as_bool(value, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be True or False, got {describe(value)}")
    return bool(value)


def as_shape(value, what: str = "shape", allow_minus_one: bool = False) -> tuple:
    """A tuple of non-negative ints (one -1 allowed for reshape), size-checked."""
    if isinstance(value, Variable):
        raise ValueError(f"{what} must be a tuple or list of integers (use shape(x) for a "
                         f"tensor's shape), got {describe(value)}")
    if is_int(value):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a tuple or list of integers, got {describe(value)}")
    if len(value) > MAX_RANK:
        raise ValueError(f"{what} has {len(value)} dimensions; the limit is {MAX_RANK}")
    dims = []
    for dim in value:
        if dim is None:
            raise ValueError(f"{what} {tuple(value)} has an unknown (None) dimension")
        low = -1 if allow_minus_one else 0
        dims.append(as_int(dim, f"{what} entry", low, MAX_DIM))
    if dims.count(-1) > 1:
        raise ValueError(f"{what} {tuple(dims)} may hold at most one -1")
    check_size([d for d in dims if d != -1], what)
    return tuple(dims)


def as_tensor_list(value, ctx: EvalContext, what: str) -> list:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{what} must be a non-empty list of tensors, e.g. [x[0], x[1]], "
                         f"got {describe(value)}")
    like = next((v for v in value if isinstance(v, Variable) and v.dtype.kind == "f"), None)
    tensors = [to_tensor(v, ctx, like=like, what=f"{what} item") for v in value]
    check_size((sum(t.data.size for t in tensors),), "the result")
    return tensors


def integer_indices(value, what: str = "indices") -> np.ndarray:
    """Integer index array from a tensor (float tensors must hold whole numbers)."""
    data = value.data if isinstance(value, Variable) else value
    if isinstance(data, (list, tuple)) and not _all_numbers(data):
        raise ValueError(f"{what} must be integers, got {describe(value)}")
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be integers, got {describe(value)}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{what} must hold whole numbers")
    return array.astype(np.int64)


# -- the table --------------------------------------------------------------------------
@dataclass(frozen=True)
class Function:
    """One callable of the table: its parameters (names and defaults) and its impl.

    ``impl(ctx, *args)`` receives the arguments in ``params`` order, defaults filled.
    """
    name: str
    impl: Callable
    params: tuple
    defaults: dict
    doc: str

    @property
    def required(self) -> tuple:
        return tuple(p for p in self.params if p not in self.defaults)

    def signature(self) -> str:
        parts = [p if p not in self.defaults else f"{p}={self.defaults[p]!r}"
                 for p in self.params]
        return f"{self.name}({', '.join(parts)})"

    def bind(self, args: list, kwargs: dict) -> list:
        """Arguments in parameter order; the parser has already checked the names."""
        values = dict(zip(self.params, args))
        values.update(kwargs)
        return [values[p] if p in values else self.defaults[p] for p in self.params]


FUNCTIONS: dict = {}


def _register(name: str, params: str, doc: str, defaults: dict | None = None):
    def wrap(impl):
        FUNCTIONS[name] = Function(name, impl, tuple(params.split()), defaults or {}, doc)
        return impl
    return wrap


def _unary(name: str, op, doc: str):
    _register(name, "x", doc)(lambda ctx, x: op(to_tensor(x, ctx, what="x")))


_unary("abs", ops.abs_, "elementwise absolute value")
_unary("exp", ops.exp, "elementwise e**x")
_unary("log", ops.log, "elementwise natural logarithm")
_unary("sqrt", ops.sqrt, "elementwise square root")
_unary("square", ops.square, "elementwise x**2")
_unary("sign", ops.sign, "elementwise sign (no gradient)")
_unary("relu", ops.relu, "max(x, 0)")
_unary("sigmoid", ops.sigmoid, "1 / (1 + exp(-x))")
_unary("tanh", ops.tanh, "hyperbolic tangent")
_unary("softplus", ops.softplus, "log(1 + exp(x))")
_unary("selu", ops.selu, "scaled exponential linear unit")


@_register("gelu", "x", "exact Gaussian error linear unit")
def _gelu(ctx, x):
    x = to_tensor(x, ctx, what="x")
    out = ops.gelu(x)
    # ops.gelu promotes float32 to float64 (numpy-scalar constants); keep the input dtype.
    return out if out.dtype == x.dtype else ops.cast(out, x.dtype)


@_register("stop_gradient", "x", "the value of x, treated as a constant by backprop")
def _stop_gradient(ctx, x):
    return Variable(to_tensor(x, ctx, what="x").data)


@_register("elu", "x alpha", "exponential linear unit", {"alpha": 1.0})
def _elu(ctx, x, alpha):
    return ops.elu(to_tensor(x, ctx, what="x"), as_float(alpha, "alpha"))


def _softmax_like(op):
    def impl(ctx, x, axis):
        x = to_tensor(x, ctx, what="x")
        return op(x, axis=as_axis(axis, x.data.ndim))
    return impl


_register("softmax", "x axis", "softmax along axis", {"axis": -1})(_softmax_like(ops.softmax))
_register("log_softmax", "x axis", "log of softmax along axis",
          {"axis": -1})(_softmax_like(ops.log_softmax))


@_register("l2_normalize", "x axis", "x / sqrt(max(sum(x**2, axis), 1e-12))", {"axis": -1})
def _l2_normalize(ctx, x, axis):
    x = to_tensor(x, ctx, what="x")
    axes = as_axes(axis, x.data.ndim)
    squares = ops.sum_(ops.square(x), axis=axes, keepdims=True)
    return ops.div(x, ops.sqrt(ops.maximum(squares, to_tensor(1e-12, ctx, like=x))))


@_register("clip", "x min_value max_value", "x limited to [min_value, max_value]")
def _clip(ctx, x, min_value, max_value):
    x = to_tensor(x, ctx, what="x")
    low, high = as_float(min_value, "min_value"), as_float(max_value, "max_value")
    if low > high:
        raise ValueError(f"min_value {low} is larger than max_value {high}")
    return ops.clip(x, low, high)


def _elementwise_pair(op):
    def impl(ctx, x, y):
        x, y = tensor_pair(x, y, ctx)
        check_size(np.broadcast_shapes(x.shape, y.shape), "the result")
        return op(x, y)
    return impl


_register("maximum", "x y", "elementwise maximum")(_elementwise_pair(ops.maximum))
_register("minimum", "x y", "elementwise minimum")(_elementwise_pair(ops.minimum))


@_register("dot", "x y", "matrix product: last axis of x with the first of a 1-D/2-D y")
def _dot(ctx, x, y):
    x, y = tensor_pair(x, y, ctx)
    if x.data.ndim < 1 or y.data.ndim < 1:
        raise ValueError("both arguments must have at least one axis")
    if x.shape[-1] != y.shape[0]:
        raise ValueError(f"the last axis of x {tuple(x.shape)} and the first axis of y "
                         f"{tuple(y.shape)} differ in size")
    check_size(x.shape[:-1] + y.shape[1:], "the result")
    return ops.dot(x, y)


@_register("batch_dot", "x y axes", "per-sample product contracting axes[0] of x with "
           "axes[1] of y", {"axes": None})
def _batch_dot(ctx, x, y, axes):
    x, y = tensor_pair(x, y, ctx)
    nx, ny = x.data.ndim, y.data.ndim
    if nx < 2 or ny < 2:
        raise ValueError(f"x and y need a batch axis and at least one more, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"batch sizes differ: {x.shape[0]} and {y.shape[0]}")
    if axes is None:
        ax, ay = nx - 1, (ny - 2 if ny > 2 else ny - 1)
    else:
        pair = (axes, axes) if is_int(axes) else axes
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"axes must be an integer or a pair of integers, got "
                             f"{describe(axes)}")
        ax, ay = as_axis(pair[0], nx, "axes[0]"), as_axis(pair[1], ny, "axes[1]")
    if ax == 0 or ay == 0:
        raise ValueError("axes cannot contract the batch axis (axis 0)")
    rest = [d for i, d in enumerate(x.shape) if i != ax] + \
        [d for i, d in enumerate(y.shape) if i not in (0, ay)]
    check_size(rest, "the result")
    return ops.batch_dot(x, y, axes=(ax, ay))


@_register("one_hot", "indices num_classes", "one-hot encoding on a new last axis "
           "(out-of-range indices give zero rows); no gradient")
def _one_hot(ctx, indices, num_classes):
    n = as_int(num_classes, "num_classes", 1, MAX_DIM)
    idx = integer_indices(indices)
    check_size(idx.shape + (n,), "the one-hot result")
    # Not np.eye(n)[idx]: that allocates n*n values before picking rows.
    dtype = indices.dtype if isinstance(indices, Variable) and indices.dtype.kind == "f" \
        else ctx.float_dtype
    return Variable((idx[..., None] == np.arange(n)).astype(dtype))


@_register("permute_dimensions", "x pattern", "transpose with every axis listed, batch "
           "included: permute_dimensions(x, (0, 2, 1))")
def _permute_dimensions(ctx, x, pattern):
    x = to_tensor(x, ctx, what="x")
    if not isinstance(pattern, (list, tuple)):
        raise ValueError(f"pattern must be a tuple of axes, got {describe(pattern)}")
    axes = tuple(as_int(p, "pattern entry") for p in pattern)
    if sorted(axes) != list(range(x.data.ndim)):
        raise ValueError(f"pattern {axes} must list each of the {x.data.ndim} axes "
                         f"0..{x.data.ndim - 1} of a tensor of shape {tuple(x.shape)} once")
    return ops.permute(x, axes)


@_register("expand_dims", "x axis", "insert a size-1 axis", {"axis": -1})
def _expand_dims(ctx, x, axis):
    x = to_tensor(x, ctx, what="x")
    if x.data.ndim >= MAX_RANK:
        raise ValueError(f"rank would exceed {MAX_RANK}")
    return ops.expand_dims(x, as_axis(axis, x.data.ndim + 1))


@_register("squeeze", "x axis", "remove a size-1 axis")
def _squeeze(ctx, x, axis):
    x = to_tensor(x, ctx, what="x")
    axis = as_axis(axis, x.data.ndim)
    if x.shape[axis] != 1:
        raise ValueError(f"axis {axis} of shape {tuple(x.shape)} has size "
                         f"{x.shape[axis]}, not 1")
    return ops.squeeze(x, axis)


@_register("gather", "reference indices", "rows of reference picked by integer indices "
           "along the first axis")
def _gather(ctx, reference, indices):
    reference = to_tensor(reference, ctx, what="reference")
    if reference.data.ndim < 1:
        raise ValueError("reference must have at least one axis")
    idx = integer_indices(indices)
    check_size(idx.shape + reference.shape[1:], "the result")
    return ops.gather(reference, idx)


@_register("concatenate", "tensors axis", "join tensors along an axis", {"axis": -1})
def _concatenate(ctx, tensors, axis):
    tensors = as_tensor_list(tensors, ctx, "tensors")
    ndim = tensors[0].data.ndim
    if ndim == 0:
        raise ValueError("cannot concatenate scalars")
    return ops.concatenate(tensors, axis=as_axis(axis, ndim))


@_register("stack", "tensors axis", "join tensors along a new axis", {"axis": 0})
def _stack(ctx, tensors, axis):
    tensors = as_tensor_list(tensors, ctx, "tensors")
    if len({tuple(t.shape) for t in tensors}) != 1:
        raise ValueError(f"tensors must have equal shapes, got "
                         f"{', '.join(str(tuple(t.shape)) for t in tensors)}")
    return ops.stack(tensors, axis=as_axis(axis, tensors[0].data.ndim + 1))


@_register("reshape", "x shape", "reshape, batch included: reshape(x, (batch, 5, 2)) or "
           "(-1, 5, 2)")
def _reshape(ctx, x, shape):
    x = to_tensor(x, ctx, what="x")
    return ops.reshape(x, as_shape(shape, "shape", allow_minus_one=True))


def _reduction(op):
    def impl(ctx, x, axis, keepdims):
        x = to_tensor(x, ctx, what="x")
        return op(x, axis=as_axes(axis, x.data.ndim), keepdims=as_bool(keepdims, "keepdims"))
    return impl


_REDUCE_DEFAULTS = {"axis": None, "keepdims": False}
_register("sum", "x axis keepdims", "sum over axis (all axes if None)",
          _REDUCE_DEFAULTS)(_reduction(ops.sum_))
_register("mean", "x axis keepdims", "mean over axis (all axes if None)",
          _REDUCE_DEFAULTS)(_reduction(ops.mean))
_register("max", "x axis keepdims", "maximum over axis (ties share the gradient)",
          _REDUCE_DEFAULTS)(_reduction(ops.max_))
_register("min", "x axis keepdims", "minimum over axis (ties share the gradient)",
          _REDUCE_DEFAULTS)(_reduction(ops.min_))


def _need_rng(ctx, name):
    if ctx.rng is None:
        raise ValueError(f"{name} needs a random generator, and none was given here")
    return ctx.rng


@_register("random_normal", "shape mean stddev", "normal noise of the given shape "
           "(batch included: random_normal((batch, 10))); no gradient",
           {"mean": 0.0, "stddev": 1.0})
def _random_normal(ctx, shape, mean, stddev):
    shape = as_shape(shape)
    return ops.random_normal(shape, _need_rng(ctx, "random_normal"), as_float(mean, "mean"),
                             as_float(stddev, "stddev"), dtype=ctx.float_dtype)


@_register("random_uniform", "shape minval maxval", "uniform noise in [minval, maxval); "
           "no gradient", {"minval": 0.0, "maxval": 1.0})
def _random_uniform(ctx, shape, minval, maxval):
    shape = as_shape(shape)
    return ops.random_uniform(shape, _need_rng(ctx, "random_uniform"),
                              as_float(minval, "minval"), as_float(maxval, "maxval"),
                              dtype=ctx.float_dtype)


def _shape(ctx, x):
    if not isinstance(x, (Variable, np.ndarray)):
        raise ValueError(f"x must be a tensor, got {describe(x)}")
    return tuple(int(d) for d in x.shape)


_register("shape", "x", "the shape of x as a tuple of integers, batch included")(_shape)
_register("int_shape", "x", "alias of shape(x)")(_shape)
