"""Add: Sums its inputs elementwise."""
from __future__ import annotations

from .. import ops
from .merging import ElementwiseMerge


class Add(ElementwiseMerge):
    TYPE = "Add"
    DOC = "Sums its inputs elementwise."
    OP = staticmethod(ops.add)
