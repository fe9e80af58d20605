"""What the expression parser and evaluator share: limits, names, operators, the error.

The parser imports the evaluator (an :class:`~graphspec.expr.parser.Expression` runs
itself), and both import this module: imports point one way only.
"""
from __future__ import annotations

import ast
import math

from ..errors import GraphspecError
from .functions import FUNCTIONS

MAX_LENGTH = 2000
MAX_NODES = 500
MAX_DEPTH = 50
# Python integers in an expression (literals and results of integer arithmetic) must fit
# in this many bits: enough for any shape or index, too few for 10**10**10.
MAX_INT_BITS = 256

BATCH = "batch"
CONSTANTS = {"pi": math.pi, "e": math.e}
RESERVED = frozenset(FUNCTIONS) | frozenset(CONSTANTS) | {BATCH}

BINARY_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
                    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@"}
UNARY_OPERATORS = {ast.USub: "-", ast.UAdd: "+"}


class ExprError(GraphspecError):
    """An expression that cannot be parsed, is not allowed, or fails to evaluate.

    ``col`` is the 0-based character offset of the offending construct in the
    expression text; ``field`` optionally names the spec argument holding the text
    (``expr``, ``output_shape``), so the compiler can point into the spec file.
    """

    def __init__(self, message: str, col: int = 0, field: str | None = None):
        self.message, self.col, self.field = message, int(col), field
        super().__init__(message)
