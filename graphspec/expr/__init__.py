"""The safe expression language of Lambda and Merge layers, custom losses and added
loss terms: Python syntax, parsed and checked against a whitelist, evaluated by walking
the tree over :mod:`graphspec.ops` (never ``eval``).

>>> from graphspec.autodiff import Variable
>>> import numpy as np
>>> expr = parse_expression("abs(x[0]) + abs(x[1])", {"x"})
>>> expr.evaluate({"x": [Variable(np.array([[-1., -2, 3]])),
...                      Variable(np.array([[4., -5, -6]]))]}).data
array([[5., 7., 9.]])
"""
from .evaluator import evaluate
from .functions import FUNCTIONS, MAX_ELEMENTS, Function
from .parser import (BATCH, CONSTANTS, MAX_DEPTH, MAX_INT_BITS, MAX_LENGTH, MAX_NODES,
                     RESERVED, Expression, ExprError, parse_expression)

__all__ = ["BATCH", "CONSTANTS", "FUNCTIONS", "MAX_DEPTH", "MAX_ELEMENTS", "MAX_INT_BITS",
           "MAX_LENGTH", "MAX_NODES", "RESERVED", "Expression", "ExprError", "Function",
           "evaluate", "parse_expression"]
