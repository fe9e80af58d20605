"""TimeDistributed: apply a layer or a whole model to every timestep of a sequence.

The wrapped layer (or sub-model) is called once on ``(batch * steps, ...)``: the batch
and time axes are folded together, so its weights are shared across time and no Python
loop runs over timesteps. Reference items 4 and 10.

Masks (Keras' TimeDistributed): a wrapped layer that takes a mask (an RNN, a model) gets
the input's mask folded the same way (Keras passes ``mask[:, i]`` to every step's call);
the output carries the input's mask unchanged (Keras' default ``compute_mask``) when it
still fits the output (same rank as the input); a wrapped layer that drops an axis
(an RNN without ``return_sequences`` over ``(batch, steps, words, features)``) leaves
Keras a mask of the wrong rank, which graphspec drops instead.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer


class TimeDistributed(Layer):
    TYPE = "TimeDistributed"
    DOC = "Applies the wrapped layer or model to every timestep (axis 1) of its input."
    ARGS = {"layer": {"description": "the wrapped layer or model: a name or an inline layer"}}
    REQUIRED = ("layer",)
    WRAPS = ("layer",)
    SUPPORTS_MASKING = True
    USES_MASK = True

    @property
    def inner(self):
        return self.config["layer"]

    def sublayers(self):
        return [self.inner]

    def _inner_shapes(self, input_shapes):
        self.check_input_count(len(input_shapes))
        shape = tuple(input_shapes[0])
        if len(shape) < 3:
            raise ShapeError(f"TimeDistributed '{self.name}' needs (batch, steps, ...) input, "
                             f"got {shape}")
        return shape[1], [(None,) + shape[2:]]

    def compute_output_shapes(self, input_shapes):
        steps, inner_shapes = self._inner_shapes(input_shapes)
        out = self.inner.compute_output_shapes(inner_shapes)
        # whether the input's mask fits the first output, for mask_sources: the compiler
        # asks right after this, for the same call
        self._mask_fits = len(out[0]) == len(inner_shapes[0])
        return [(None, steps) + tuple(s[1:]) for s in out]

    def mask_sources(self, sources, n_outputs):
        fits = self.__dict__.get("_mask_fits", True)
        first = sources[0] if sources and fits else None
        return [first] + [None] * (n_outputs - 1)

    def compute_mask(self, inputs, masks):
        mask = masks[0] if masks else None
        if mask is None:
            return [None]
        inner_in = (None,) + tuple(inputs[0].shape[2:])
        out = self.inner.compute_output_shapes([inner_in])[0]
        return [mask if len(out) == len(inner_in) else None]

    def register_weights(self, input_shapes):
        self.inner.register_weights(self._inner_shapes(input_shapes)[1])

    def param_count(self):
        return 0, 0   # the wrapped layer counts its own weights

    def forward(self, inputs, ctx):
        return self.forward_masked(inputs, [None], ctx)

    def forward_masked(self, inputs, masks, ctx):
        x, mask = inputs[0], masks[0]
        batch, steps = x.shape[0], x.shape[1]
        folded = ops.reshape(x, (batch * steps,) + x.shape[2:])
        if mask is not None and getattr(self.inner, "USES_MASK", False):
            outs = self.inner.forward_masked(
                [folded], [mask.reshape((batch * steps,) + mask.shape[2:])], ctx)
        else:
            outs = self.inner.forward([folded], ctx)
        return [ops.reshape(y, (batch, steps) + y.shape[1:]) for y in outs]
