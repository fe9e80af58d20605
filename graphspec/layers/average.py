"""Average: elementwise mean of its inputs."""
from __future__ import annotations

from functools import reduce

import numpy as np

from .. import ops
from .merging import ElementwiseMerge


class Average(ElementwiseMerge):
    TYPE = "Average"
    DOC = "Elementwise mean of its inputs."

    def forward(self, inputs, ctx):
        total = reduce(ops.add, inputs)
        # a dtype-matched scale: a float64 scalar array would promote float32 to float64
        return [ops.mul(total, np.asarray(1.0 / len(inputs), dtype=total.dtype))]
