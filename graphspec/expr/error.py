"""The error of the expression language, in a module of its own: the compiler and the
training jobs catch it without importing the parser, the evaluator and the functions
(a spec with no expression never needs them)."""
from __future__ import annotations

from ..errors import GraphspecError


class ExprError(GraphspecError):
    """An expression that cannot be parsed, is not allowed, or fails to evaluate.

    ``col`` is the 0-based character offset of the offending construct in the
    expression text; ``field`` optionally names the spec argument holding the text
    (``expr``, ``output_shape``), so the compiler can point into the spec file.
    """

    def __init__(self, message: str, col: int = 0, field: str | None = None):
        self.message, self.col, self.field = message, int(col), field
        super().__init__(message)
