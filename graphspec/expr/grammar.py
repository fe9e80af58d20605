"""What the expression parser and evaluator share: limits, names and operators (the
error is :mod:`graphspec.expr.error`).

The parser imports the evaluator (an :class:`~graphspec.expr.parser.Expression` runs
itself), and both import this module: imports point one way only.
"""
from __future__ import annotations

import ast
import math

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
