"""Subtract: ``x[0] - x[1]`` (exactly two inputs)."""
from __future__ import annotations

from .. import ops
from .merging import ElementwiseMerge


class Subtract(ElementwiseMerge):
    TYPE = "Subtract"
    DOC = "Subtracts the second input from the first."
    INPUTS = 2
    OP = staticmethod(ops.sub)
