"""PReLU: ``x`` if ``x >= 0`` else ``alpha * x`` with a trainable ``alpha`` per feature
(Keras: computed as ``relu(x) - alpha * relu(-x)``).

``alpha`` has the input's feature shape with every axis in ``shared_axes`` set to 1
(``shared_axes: [1, 2]`` on images: one slope per channel); initialised to zeros.
"""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from .base import Layer, WeightSpec, single_shape
from .common_args import REGULARIZER, initializer


class PReLU(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "PReLU"
    DOC = ("Leaky ReLU with a learned slope per feature: alpha of the input's feature "
           "shape, 1 on the shared_axes.")
    ARGS = {"alpha_initializer": initializer("zeros"),
            "alpha_regularizer": REGULARIZER,
            "shared_axes": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 64},
                                      {"type": "array", "minItems": 1,
                                       "items": {"type": "integer", "minimum": 1,
                                                 "maximum": 64}},
                                      {"type": "null"}], "default": None}}
    REGULARIZED_WEIGHTS = {"alpha_regularizer": "alpha"}

    def shared(self) -> tuple:
        axes = self.shared_axes
        return () if axes is None else tuple(axes) if isinstance(axes, list) else (axes,)

    def alpha_shape(self, shape: tuple) -> tuple:
        out = list(shape[1:])
        for axis in self.shared():
            if axis >= len(shape):
                raise ShapeError(f"PReLU layer '{self.name}': shared axis {axis} does not "
                                 f"exist in input shape {shape}")
            out[axis - 1] = 1
        if any(d is None for d in out):
            raise ShapeError(f"PReLU layer '{self.name}' needs known sizes on every axis it "
                             f"does not share (shared_axes), got input shape {shape}")
        return tuple(out)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        self.alpha_shape(shape)
        return [shape]

    def weight_specs(self, input_shapes):
        return [WeightSpec("alpha", self.alpha_shape(tuple(input_shapes[0])),
                           self.alpha_initializer)]

    def forward(self, inputs, ctx):
        x = inputs[0]
        negative = ops.relu(ops.neg(x))
        return [ops.sub(ops.relu(x), ops.mul(self.weights["alpha"], negative))]
