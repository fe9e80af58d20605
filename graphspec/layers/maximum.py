"""Maximum: Elementwise maximum of its inputs."""
from __future__ import annotations

from .. import ops
from .merging import MaskedExtremum


class Maximum(MaskedExtremum):
    TYPE = "Maximum"
    DOC = "Elementwise maximum of its inputs."
    OP = staticmethod(ops.maximum)
