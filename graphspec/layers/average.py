"""Average: elementwise mean of its inputs."""
from __future__ import annotations

from functools import reduce

from .. import ops
from .merging import ElementwiseMerge


class Average(ElementwiseMerge):
    TYPE = "Average"
    DOC = "Elementwise mean of its inputs."

    def forward(self, inputs, ctx):
        return [ops.mul(reduce(ops.add, inputs), 1.0 / len(inputs))]
