"""Shared shape rule for elementwise merge layers (Add, Subtract, Multiply, ...)."""
from __future__ import annotations

from functools import reduce

from ..errors import ShapeError
from .base import Layer


def broadcast_feature_shapes(layer: Layer, input_shapes: list) -> tuple:
    """Keras merge semantics: feature shapes must match, or broadcast where one is 1."""
    layer.check_input_count(len(input_shapes))
    ranks = {len(s) for s in input_shapes}
    if len(ranks) != 1:
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' needs inputs of equal rank, "
                         f"got shapes {', '.join(map(str, input_shapes))}")
    out = [None]
    for dims in list(zip(*input_shapes))[1:]:
        sizes = {d for d in dims if d not in (None, 1)}
        if len(sizes) > 1:
            raise ShapeError(f"{layer.TYPE} layer '{layer.name}' cannot merge shapes "
                             f"{', '.join(map(str, input_shapes))}: they must be equal")
        out.append(sizes.pop() if sizes else (1 if all(d == 1 for d in dims) else None))
    return tuple(out)


class ElementwiseMerge(Layer):
    """Folds an elementwise binary op over all inputs."""
    INPUTS = (2, None)
    OP = None

    def compute_output_shapes(self, input_shapes):
        return [broadcast_feature_shapes(self, input_shapes)]

    def forward(self, inputs, ctx):
        return [reduce(type(self).OP, inputs)]
