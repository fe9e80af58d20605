"""Shared shape rule for elementwise merge layers (Add, Subtract, Multiply, ...)."""
from __future__ import annotations

from functools import reduce

import numpy as np

from .. import ops
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


# -- merges whose values depend on the masks (Keras' Multiply, Maximum, Minimum) ------------
def spread(mask, x):
    """A ``(batch, steps)`` mask over ``x``'s last axis, as Keras' broadcast_to."""
    return None if mask is None else np.broadcast_to(mask[..., None], x.shape)


class MaskedProduct(ElementwiseMerge):
    """Keras' Multiply with masks: a masked step counts as 1 in the product, and where
    every input is masked (all inputs having masks) the output is 0."""
    USES_MASK = True

    def forward_masked(self, inputs, masks, ctx):
        every = all(m is not None for m in masks)
        out, kept = None, None
        for x, mask in zip(inputs, masks):
            keep = spread(mask, x)
            if keep is not None:
                x = ops.where(keep, x, x.dtype.type(1))
                if every:
                    kept = keep if kept is None else kept | keep
            out = x if out is None else ops.mul(out, x)
        return [ops.where(kept, out, out.dtype.type(0)) if every else out]


class MaskedExtremum(ElementwiseMerge):
    """Keras' Maximum/Minimum with masks (``_apply_merge_op_and_or_mask``): a masked step
    of one input takes the other side's value, so it never wins or loses the merge."""
    USES_MASK = True

    def forward_masked(self, inputs, masks, ctx):
        out, out_keep = inputs[0], spread(masks[0], inputs[0])
        for x, mask in zip(inputs[1:], masks[1:]):
            keep = spread(mask, x)
            if keep is not None:
                x = ops.where(keep, x, out)
            if out_keep is not None:
                out = ops.where(out_keep, out, x)
            out_keep = out_keep | keep if keep is not None and out_keep is not None \
                else None
            out = type(self).OP(out, x)
        return [out]
