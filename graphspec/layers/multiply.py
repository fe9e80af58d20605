"""Multiply: Multiplies its inputs elementwise."""
from __future__ import annotations

from .. import ops
from .merging import MaskedProduct


class Multiply(MaskedProduct):
    TYPE = "Multiply"
    DOC = "Multiplies its inputs elementwise."
    OP = staticmethod(ops.mul)
