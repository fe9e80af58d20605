"""Lambda: a layer whose forward is an expression of its input(s).

The body is text in the safe expression language (:mod:`graphspec.expr`), never Python
code: ``x[:, :5]``, ``abs(x[0]) + abs(x[1])``, ``mu + exp(0.5 * logvar) *
random_normal(shape(mu))``. Expressions are written with the batch axis included, as in
Keras (``x[:, :5]`` takes the first five features; ``x[:5]`` would take five samples).

Names bound in the body: ``x`` (the input tensor, or the list of inputs when the layer
is called on several: ``x[0]``), ``inputs`` (the same), ``batch`` (the batch size), the
``constants`` of the layer, and ``pi``, ``e``.

Output shape (reference item 12): ``output_shape`` given as a list excludes the batch
axis (``[5]``); given as an expression of the input shape ``s`` (a tuple with the batch
axis, or a list of tuples for several inputs) it includes it (``(s[0], s[1] // 2)``).
Without it, the shape is inferred by running the expression on zeros: at batch 2 with
unknown feature axes taken as 1, then at a batch larger than every feature size (at
least 7) with unknown axes taken as 3. An output whose first axis is not the batch means
the body forgot the batch axis; output axes that differ between the runs are unknown.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, recording
from ..errors import ShapeError
from ..expr import RESERVED, ExprError, parse_expression
from ..expr.functions import describe
from .base import MAX_DIM, CallContext, Layer

# Shape inference runs the expression on zero tensors no larger than this.
MAX_INFERENCE_ELEMENTS = 10 ** 7
# Constant arrays bound in an expression hold at most this many numbers.
MAX_CONSTANT_ELEMENTS = 1 << 20
_LAYER_NAMES = ("x", "inputs")

_SHAPE_ENTRY = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_DIM},
                          {"type": "null"}]}
EXPRESSION_ARGS = {
    "expr": {"type": "string", "minLength": 1, "maxLength": 2000,
             "description": "the body, with the batch axis included: x[:, :5]; several "
                            "inputs are x[0], x[1], ..."},
    "output_shape": {
        "default": None,
        "anyOf": [{"type": "null"},
                  {"type": "array", "items": _SHAPE_ENTRY, "maxItems": 32},
                  {"type": "string", "minLength": 1, "maxLength": 2000}],
        "description": "a list excludes the batch axis ([5]); an expression of the input "
                       "shape s includes it ((s[0], s[1] // 2)); inferred when absent"},
    "constants": {
        "type": "object", "default": {},
        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"type": ["number", "array"]},
        "description": "names bound in expr: a number or a nested list of numbers"},
}


class Lambda(Layer):
    TYPE = "Lambda"
    DOC = "An expression of its input(s), batch axis included: x[:, :5]; see graphspec.expr."
    ARGS = EXPRESSION_ARGS
    REQUIRED = ("expr",)
    INPUTS = (1, None)

    def __init__(self, name: str, config: dict, trainable: bool = True):
        super().__init__(name, config, trainable)
        self._constants = _constants(self.config.get("constants") or {}, self)
        names = set(_LAYER_NAMES) | set(self._constants)
        self._expression = self._parse(self.config["expr"], names, "expr")
        shape = self.config.get("output_shape")
        self._shape_expression = self._parse(shape, {"s"}, "output_shape") \
            if isinstance(shape, str) else None
        self._inferred: dict = {}

    def _parse(self, text, names, field):
        try:
            return parse_expression(text, names)
        except ExprError as err:
            raise ExprError(f"{self.TYPE} layer '{self.name}' {field}: {err.message}",
                            err.col, field) from None

    # -- the contract ------------------------------------------------------------------
    def compute_output_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        shapes = [tuple(s) for s in input_shapes]
        given = self.config.get("output_shape")
        if given is None:
            return [self._infer(shapes)]
        if self._shape_expression is None:
            return [(None,) + _checked_dims(given, self, "output_shape must be a list of "
                                            "dimensions, batch axis excluded; got")]
        return [self._evaluate_shape(shapes)]

    def forward(self, inputs, ctx):
        out = self._evaluate(self._expression, self._bindings(list(inputs)), ctx.rng, "expr")
        if isinstance(out, np.ndarray):
            out = Variable(out)
        if not isinstance(out, Variable) or out.data.ndim == 0:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': expr must give one tensor "
                             f"with a batch axis, got {describe(out)}")
        return [out]

    # -- evaluation ----------------------------------------------------------------------
    def _bindings(self, inputs: list) -> dict:
        value = inputs[0] if len(inputs) == 1 else inputs
        bindings = dict(self._constants)
        bindings.update(x=value, inputs=value, batch=int(inputs[0].shape[0]))
        return bindings

    def _evaluate(self, expression, bindings, rng, field):
        try:
            return expression.evaluate(bindings, rng)
        except ExprError as err:
            raise ExprError(f"{self.TYPE} layer '{self.name}' {field}: {err.message}",
                            err.col, field) from None

    def _evaluate_shape(self, shapes: list) -> tuple:
        s = shapes[0] if len(shapes) == 1 else list(shapes)
        out = self._evaluate(self._shape_expression, {"s": s}, None, "output_shape")
        if not isinstance(out, (tuple, list)) or not out or out[0] is not None:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': an output_shape expression "
                             f"gives the shape with the batch axis first, (s[0], ...); got "
                             f"{out!r}. A list output_shape excludes the batch axis.")
        return (None,) + _checked_dims(out[1:], self, "the output_shape expression gave")

    def _infer(self, shapes: list) -> tuple:
        key = tuple(shapes)
        if key not in self._inferred:
            self._inferred[key] = self._infer_uncached(shapes)
        return self._inferred[key]

    def _infer_uncached(self, shapes: list) -> tuple:
        unknown = any(d is None for s in shapes for d in s[1:])
        first = self._run_dummy(shapes, 2, 1, required=True)
        # The second run changes the batch size (an expression slicing the batch axis,
        # x[:5], gives itself away) and the unknown axes (the output axes that follow
        # them become None). Its batch exceeds every known feature size when that fits,
        # so that x[:10] meaning "the first ten features" cannot keep the batch size.
        batch = max([7] + [d + 1 for s in shapes for d in s[1:] if d is not None])
        if _size(_dummy_shapes(shapes, batch, 3)) > MAX_INFERENCE_ELEMENTS:
            batch = 7
        second = self._run_dummy(shapes, batch, 3, required=unknown)
        if second is None:
            return (None,) + first[1:]
        if len(first) != len(second):
            raise ShapeError(f"{self.TYPE} layer '{self.name}': the output rank depends on "
                             f"the unknown input dimensions of {shapes}; give output_shape")
        return (None,) + tuple(a if a == b else None for a, b in zip(first[1:], second[1:]))

    def _run_dummy(self, shapes: list, batch: int, fill: int, required: bool):
        """Output shape of the expression on zeros, None if too large and not required."""
        dummies = _dummy_shapes(shapes, batch, fill)
        size = _size(dummies)
        if size > MAX_INFERENCE_ELEMENTS:
            if not required:
                return None
            raise ShapeError(
                f"{self.TYPE} layer '{self.name}': inferring the output shape would run the "
                f"expression on {size} values (limit {MAX_INFERENCE_ELEMENTS}); give "
                "output_shape")
        inputs = [Variable(np.zeros(d, dtype=np.float32)) for d in dummies]
        try:
            with recording(False), np.errstate(all="ignore"):
                # its own generator: inference never advances the model's noise
                out = self.forward(inputs, CallContext(rng=np.random.default_rng(0)))[0]
        except ExprError as err:
            if any(d is None for s in shapes for d in s[1:]):
                err = ExprError(f"{err.message} (unknown input dimensions were taken as "
                                "1 and 3 to infer the output shape; give output_shape to "
                                "skip inference)", err.col, err.field)
            raise err from None
        if out.shape[0] != batch:
            raise ShapeError(
                f"{self.TYPE} layer '{self.name}': expr gives shape {tuple(out.shape)} for "
                f"a batch of {batch}: Lambda expressions are written with the batch axis "
                "included (x[:, :5], not x[:5]), and the result must keep it first")
        return tuple(int(d) for d in out.shape)


def _constants(values: dict, layer: Layer) -> dict:
    """Bound constants: ints and floats stay Python numbers, lists become arrays."""
    out = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ExprError(f"{layer.TYPE} layer '{layer.name}': constant name {name!r} is "
                            "not an identifier", 0, "constants")
        if name in RESERVED or name in _LAYER_NAMES or name == "s":
            raise ExprError(f"{layer.TYPE} layer '{layer.name}': constant name '{name}' is "
                            "taken (a function, pi, e, batch, x, inputs or s)", 0,
                            "constants")
        if isinstance(value, bool) or not isinstance(value, (int, float, list)):
            raise ExprError(f"{layer.TYPE} layer '{layer.name}': constant '{name}' must be "
                            f"a number or a nested list of numbers, got "
                            f"{type(value).__name__}", 0, "constants")
        if isinstance(value, list):
            value = _constant_array(value, name, layer)
        out[name] = value
    return out


def _constant_array(value: list, name: str, layer: Layer) -> np.ndarray:
    try:
        array = np.array(value)
    except ValueError:  # ragged
        array = None
    if array is None or array.dtype.kind not in "iuf":
        raise ExprError(f"{layer.TYPE} layer '{layer.name}': constant '{name}' must be a "
                        "number or a rectangular nested list of numbers", 0, "constants")
    if array.size > MAX_CONSTANT_ELEMENTS:
        raise ExprError(f"{layer.TYPE} layer '{layer.name}': constant '{name}' has "
                        f"{array.size} entries; the limit is {MAX_CONSTANT_ELEMENTS}", 0,
                        "constants")
    return array


def _dummy_shapes(shapes: list, batch: int, fill: int) -> list:
    return [(batch,) + tuple(fill if d is None else d for d in s[1:]) for s in shapes]


def _size(shapes: list) -> int:
    return sum(int(np.prod(s, dtype=np.float64)) for s in shapes)


def _checked_dims(dims, layer: Layer, what: str) -> tuple:
    """Feature dimensions: integers in [0, MAX_DIM] or None (unknown)."""
    if not isinstance(dims, (list, tuple)) or any(
            d is not None and (not isinstance(d, int) or isinstance(d, bool) or
                               not 0 <= d <= MAX_DIM) for d in dims):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}': {what} {dims!r} (dimensions "
                         f"are integers in 0..{MAX_DIM} or null)")
    return tuple(dims)
