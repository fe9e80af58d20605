"""Maximum: Elementwise maximum of its inputs."""
from __future__ import annotations

from .. import ops
from .merging import ElementwiseMerge


class Maximum(ElementwiseMerge):
    TYPE = "Maximum"
    DOC = "Elementwise maximum of its inputs."
    OP = staticmethod(ops.maximum)
