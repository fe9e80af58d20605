"""Parse an expression and check it against a whitelist, before anything runs.

Expressions (Lambda and Merge bodies, custom losses, added loss terms) are written in
Python syntax, because that is how Keras users write them, but they are *not* Python:
the text goes through :func:`ast.parse` only to get a syntax tree, the tree is checked
node by node against the short list of forms an array expression needs, and evaluation
(``graphspec.expr.evaluator``) walks that tree calling :mod:`graphspec.ops`. Nothing is
ever compiled to code, ``eval``-ed or ``exec``-ed.

What is allowed:

- numbers (``2``, ``0.5``, ``1e-7``, ``True``/``False``); ``None`` only in subscripts,
  tuples and lists and as a function argument; ``...`` only in subscripts;
- the names the caller binds (``x`` for a Lambda, ``y_true``/``y_pred`` for a loss),
  ``batch`` (the batch size), and the constants ``pi`` and ``e``;
- arithmetic ``+ - * / // % **``, ``@`` (matrix product), unary ``-`` and ``+``;
- calls of the functions in :data:`graphspec.expr.functions.FUNCTIONS`, by bare name,
  with keyword arguments only under that function's parameter names;
- subscripts with integers, slices, ``None`` (new axis), ``...``, integer lists;
- tuple and list literals (shapes, axes, lists of tensors).

Everything else is refused with a message that names the construct and its column:
attribute access (the ``().__class__.__bases__`` escape), strings, comprehensions,
lambdas, ``:=``, star-unpacking, dicts, sets, comparisons, conditionals. Sizes are bounded
(text length, node count, nesting depth, integer literals) so a spec cannot make the
parser or the evaluator run away.
"""
from __future__ import annotations

import ast
import difflib
import re

from .error import ExprError
from .evaluator import evaluate
from .functions import FUNCTIONS
from .grammar import (BATCH, BINARY_OPERATORS, CONSTANTS, MAX_DEPTH, MAX_INT_BITS,
                      MAX_LENGTH, MAX_NODES, RESERVED, UNARY_OPERATORS)

__all__ = ["BATCH", "BINARY_OPERATORS", "CONSTANTS", "MAX_DEPTH", "MAX_INT_BITS",
           "MAX_LENGTH", "MAX_NODES", "RESERVED", "UNARY_OPERATORS", "Expression",
           "ExprError", "parse_expression"]

_REFUSED_OPERATORS = {ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^",
                      ast.BitAnd: "&", ast.Not: "not", ast.Invert: "~"}

_STRINGS = "strings are not allowed in expressions"
_REFUSED = {
    ast.JoinedStr: _STRINGS,
    ast.FormattedValue: _STRINGS,
    ast.ListComp: "comprehensions are not allowed in expressions",
    ast.SetComp: "comprehensions are not allowed in expressions",
    ast.DictComp: "comprehensions are not allowed in expressions",
    ast.GeneratorExp: "comprehensions (generator expressions) are not allowed in expressions",
    ast.Lambda: "lambda functions are not allowed in expressions",
    ast.NamedExpr: "assignment expressions (:=) are not allowed in expressions",
    ast.Starred: "star-unpacking (*args) is not allowed in expressions",
    ast.Dict: "dict literals are not allowed in expressions",
    ast.Set: "set literals are not allowed in expressions",
    ast.Compare: "comparisons (<, ==, in, is, ...) are not allowed in expressions",
    ast.BoolOp: "'and' / 'or' are not allowed in expressions",
    ast.IfExp: "conditional expressions (a if c else b) are not allowed in expressions",
    ast.Await: "'await' is not allowed in expressions",
    ast.Yield: "'yield' is not allowed in expressions",
    ast.YieldFrom: "'yield' is not allowed in expressions",
}


class Expression:
    """A parsed, validated expression; :meth:`evaluate` runs it on bound values.

    ``names`` are the caller-bound names it uses (``batch`` included when used), and
    ``functions`` the table functions it calls.
    """

    def __init__(self, text: str, tree: ast.Expression, names: frozenset,
                 functions: frozenset, locate):
        self.text, self.tree, self.names, self.functions = text, tree, names, functions
        self._locate = locate

    @property
    def uses_random(self) -> bool:
        return any(f.startswith("random_") for f in self.functions)

    def column_of(self, node: ast.AST) -> int:
        """0-based character offset of ``node`` in :attr:`text`."""
        return self._locate(node)

    def source_of(self, node: ast.AST) -> str:
        """The text of ``node``, for error messages."""
        return self.text[self._locate(node):self._locate(node, end=True)]

    def evaluate(self, bindings: dict, rng=None, dtype=None):
        """Value of the expression with ``bindings`` (name -> Variable, array, number,
        tuple or list of Variables). See :func:`graphspec.expr.evaluator.evaluate`."""
        return evaluate(self, bindings, rng=rng, dtype=dtype)

    def __repr__(self):
        return f"Expression({self.text!r})"


def parse_expression(text: str, allowed_names) -> Expression:
    """Parse ``text`` and check it against the whitelist; raise :class:`ExprError`.

    ``allowed_names`` are the names the caller will bind when evaluating (``{"x"}``,
    ``{"y_true", "y_pred"}``); ``batch``, ``pi``, ``e`` and the function names are always
    known and cannot be rebound.
    """
    allowed = frozenset(allowed_names)
    for name in sorted(allowed):
        if not isinstance(name, str) or not name.isidentifier():
            raise ExprError(f"{name!r} cannot be bound in an expression: not an identifier")
        if name in RESERVED - {BATCH}:
            what = "a function" if name in FUNCTIONS else "a built-in constant"
            raise ExprError(f"name '{name}' cannot be bound in an expression: it is {what}")
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is too long ({len(text)} characters; the limit is "
                        f"{MAX_LENGTH})", MAX_LENGTH)
    stripped = text.lstrip()
    indent = len(text) - len(stripped)
    if not stripped.strip():
        raise ExprError("expression is empty")
    _check_bracket_depth(text)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        col = indent + _char_offset(stripped, exc.lineno or 1, (exc.offset or 1) - 1,
                                    in_bytes=False)
        raise ExprError(f"syntax error: {exc.msg}", min(max(col, 0), len(text))) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExprError(f"expression cannot be parsed: {type(exc).__name__}") from None

    def locate(node, end=False):
        if end:
            return indent + _char_offset(stripped, node.end_lineno, node.end_col_offset, True)
        return indent + _char_offset(stripped, node.lineno, node.col_offset, True)

    _check_size(tree, locate)
    checker = _Checker(allowed, locate)
    checker.visit(tree.body)
    if checker.errors:
        col, _, message = min(checker.errors)
        raise ExprError(message, col)
    return Expression(text, tree, frozenset(checker.names), frozenset(checker.functions),
                      locate)


# -- limits ----------------------------------------------------------------------------
def _check_bracket_depth(text: str) -> None:
    """Refuse deep bracket nesting before Python's parser sees it (it recurses)."""
    depth = 0
    for col, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} "
                                "levels of brackets)", col)
        elif char in ")]}":
            depth = max(depth - 1, 0)


def _is_counted(node) -> bool:
    # Operator and load-context objects are shared singletons, not parts of the text.
    return not isinstance(node, (ast.expr_context, ast.operator, ast.unaryop, ast.boolop,
                                 ast.cmpop))


def _check_size(tree: ast.Expression, locate) -> None:
    """Node count and depth, walked iteratively (the tree may be deep)."""
    count = 0
    stack = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExprError(f"expression is too large (more than {MAX_NODES} syntax nodes)")
        if depth > MAX_DEPTH:
            col = locate(node) if hasattr(node, "lineno") else 0
            raise ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} "
                            "levels)", col)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if _is_counted(child))


def _char_offset(text: str, lineno: int, col: int, in_bytes: bool) -> int:
    """Character offset in ``text`` of (1-based line, column); ast columns are UTF-8
    byte offsets, SyntaxError columns are characters."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    start = starts[min(max(lineno, 1), len(starts)) - 1]
    if in_bytes:
        line = text[start:].encode("utf-8")[:col]
        return start + len(line.decode("utf-8", errors="ignore"))
    return start + col


# -- the whitelist ---------------------------------------------------------------------
class _Checker:
    """Collects every violation with its column; the first in the text is reported.

    Recursion is safe here: :func:`_check_size` has bounded the depth.
    """

    def __init__(self, allowed: frozenset, locate):
        self.allowed, self.locate = allowed, locate
        self.errors: list = []
        self.names: set = set()
        self.functions: set = set()

    def error(self, node, message: str, col: int | None = None) -> None:
        col = self.locate(node) if col is None else col
        self.errors.append((col, len(self.errors), message))

    def visit(self, node, where: str = "value") -> None:
        """``where``: "value", "index" (a subscript entry), "arg" (a call argument) or
        "item" (of a tuple or list: ``(None, 5)`` is a shape with an unknown axis)."""
        kind = type(node)
        if kind is ast.Constant:
            self.constant(node, where)
        elif kind is ast.Name:
            self.name(node)
        elif kind is ast.BinOp:
            self.operator(node, node.op, BINARY_OPERATORS)
            self.visit(node.left)
            self.visit(node.right)
        elif kind is ast.UnaryOp:
            self.operator(node, node.op, UNARY_OPERATORS)
            self.visit(node.operand)
        elif kind is ast.Call:
            self.call(node)
        elif kind is ast.Subscript:
            self.visit(node.value)
            items = node.slice.elts if type(node.slice) is ast.Tuple else [node.slice]
            for item in items:
                if type(item) is ast.Slice:
                    for part in (item.lower, item.upper, item.step):
                        if part is not None:
                            self.visit(part, "index")
                else:
                    self.visit(item, "index")
        elif kind in (ast.Tuple, ast.List):
            for item in node.elts:
                self.visit(item, "item")
        elif kind is ast.Attribute:
            self.attribute(node)
        elif kind is ast.Slice:
            self.error(node, "a slice (a:b) is only allowed inside a subscript x[...]")
        else:
            message = _REFUSED.get(kind, f"{kind.__name__} is not allowed in expressions")
            self.error(node, message)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.visit(child)

    def constant(self, node, where: str) -> None:
        value = node.value
        if isinstance(value, (str, bytes)):
            self.error(node, _STRINGS)
        elif isinstance(value, complex):
            self.error(node, "complex numbers are not allowed in expressions")
        elif value is None and where == "value":
            self.error(node, "None is only allowed in subscripts (x[:, None]), tuples "
                             "(None, 5) and as a function argument (axis=None)")
        elif value is Ellipsis and where != "index":
            self.error(node, "... is only allowed in subscripts (x[..., 0])")
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            self.error(node, f"integer literal is too large (more than {MAX_INT_BITS} bits)")

    def name(self, node) -> None:
        name = node.id
        if name in self.allowed or name == BATCH:
            self.names.add(name)
        elif name in CONSTANTS:
            pass
        elif name in FUNCTIONS:
            self.error(node, f"function '{name}' must be called: "
                             f"{FUNCTIONS[name].signature()}")
        else:
            values = sorted(self.allowed) + [BATCH] + sorted(CONSTANTS)
            hint = _suggest(name, self.allowed)
            self.error(node, f"name '{name}' is not allowed here{hint}; allowed: "
                             f"{', '.join(values)}, and the functions "
                             f"{', '.join(sorted(FUNCTIONS))}")

    def operator(self, node, op, allowed: dict) -> None:
        if type(op) not in allowed:
            symbol = _REFUSED_OPERATORS.get(type(op), type(op).__name__)
            self.error(node, f"operator '{symbol}' is not allowed in expressions; allowed: "
                             f"{' '.join(allowed.values())}")

    def attribute(self, node) -> None:
        dot = self.locate(node, end=True) - len(node.attr) - 1  # points at ".__class__"
        self.error(node, f"attribute access (.{node.attr}) is not allowed in expressions",
                   max(dot, self.locate(node)))
        self.visit(node.value)

    def call(self, node) -> None:
        func = node.func
        spec = None
        if type(func) is ast.Name:
            name = func.id
            if name in FUNCTIONS:
                spec = FUNCTIONS[name]
                self.functions.add(name)
            elif name in self.allowed or name in CONSTANTS or name == BATCH:
                self.error(func, f"'{name}' is not a function")
            else:
                self.error(func, f"function '{name}' is not allowed{_suggest(name)}; "
                                 f"available functions: {', '.join(sorted(FUNCTIONS))}")
        elif type(func) is ast.Attribute:
            self.attribute(func)
        else:
            self.error(func, "only functions from the table can be called, by name: abs(x)")
            self.visit(func)
        for arg in node.args:
            self.visit(arg, "arg")
        for keyword in node.keywords:
            if keyword.arg is None:
                self.error(keyword, "keyword unpacking (**kwargs) is not allowed in "
                                    "expressions")
            self.visit(keyword.value, "arg")
        if spec is not None:
            self.arguments(node, spec)

    def arguments(self, node, spec) -> None:
        if any(type(a) is ast.Starred for a in node.args):
            return  # reported by visit
        if len(node.args) > len(spec.params):
            self.error(node, f"{spec.name}() takes at most {len(spec.params)} argument(s), "
                             f"got {len(node.args)}: {spec.signature()}")
            return
        given = set(spec.params[:len(node.args)])
        for keyword in node.keywords:
            if keyword.arg is None:
                continue
            if keyword.arg not in spec.params:
                self.error(keyword, f"{spec.name}() has no argument '{keyword.arg}': "
                                    f"{spec.signature()}")
            elif keyword.arg in given:
                self.error(keyword, f"{spec.name}() got argument '{keyword.arg}' twice")
            given.add(keyword.arg)
        if not any(k.arg is None for k in node.keywords):
            missing = [p for p in spec.required if p not in given]
            if missing:
                self.error(node, f"{spec.name}() is missing argument(s) "
                                 f"{', '.join(missing)}: {spec.signature()}")


def _suggest(name: str, known=()) -> str:
    close = difflib.get_close_matches(name, [*known, *FUNCTIONS, *CONSTANTS], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
