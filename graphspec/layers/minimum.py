"""Minimum: Elementwise minimum of its inputs."""
from __future__ import annotations

from .. import ops
from .merging import ElementwiseMerge


class Minimum(ElementwiseMerge):
    TYPE = "Minimum"
    DOC = "Elementwise minimum of its inputs."
    OP = staticmethod(ops.minimum)
