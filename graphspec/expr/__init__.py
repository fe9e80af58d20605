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
from .error import ExprError

__all__ = ["BATCH", "CONSTANTS", "FUNCTIONS", "MAX_DEPTH", "MAX_ELEMENTS", "MAX_INT_BITS",
           "MAX_LENGTH", "MAX_NODES", "RESERVED", "Expression", "ExprError", "Function",
           "evaluate", "parse_expression"]


def __getattr__(name):
    """The parser, the evaluator and the function table, imported on first use (PEP 562):
    the compiler and the training jobs catch ExprError for a spec with no expression
    without loading them (issue 11: a cold ``graphspec validate``)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .evaluator import evaluate  # noqa: F401
    from .functions import FUNCTIONS, MAX_ELEMENTS, Function  # noqa: F401
    from .parser import (BATCH, CONSTANTS, MAX_DEPTH, MAX_INT_BITS,  # noqa: F401
                         MAX_LENGTH, MAX_NODES, RESERVED, Expression, parse_expression)
    loaded = {key: value for key, value in locals().items() if key in __all__}
    globals().update(loaded)
    return loaded[name]
