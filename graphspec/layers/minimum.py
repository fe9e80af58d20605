"""Minimum: Elementwise minimum of its inputs."""
from __future__ import annotations

from .. import ops
from .merging import MaskedExtremum


class Minimum(MaskedExtremum):
    TYPE = "Minimum"
    DOC = "Elementwise minimum of its inputs."
    OP = staticmethod(ops.minimum)
