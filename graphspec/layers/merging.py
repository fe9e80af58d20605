"""Shared shape rule for elementwise merge layers (Add, Subtract, Multiply, ...)."""
from __future__ import annotations

from functools import reduce

import numpy as np

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


def joined_sources(sources: list) -> str:
    """The names of the layers whose masks a merge combines, as one label."""
    return "+".join(dict.fromkeys(s for s in sources if s))


class ElementwiseMerge(Layer):
    """Folds an elementwise binary op over all inputs."""
    INPUTS = (2, None)
    OP = None
    # Keras' merge mask: none unless every input has one, then their OR.
    SUPPORTS_MASKING = True

    def mask_sources(self, sources, n_outputs):
        return [joined_sources(sources) if all(sources) else None]

    def compute_mask(self, inputs, masks):
        if any(m is None for m in masks):
            return [None]
        return [reduce(np.logical_or, masks)]

    def compute_output_shapes(self, input_shapes):
        return [broadcast_feature_shapes(self, input_shapes)]

    def forward(self, inputs, ctx):
        return [reduce(type(self).OP, inputs)]
