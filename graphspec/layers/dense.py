"""Dense: ``activation(x @ kernel + bias)`` on the last axis (any leading axes)."""
from __future__ import annotations

from .. import ops
from ..errors import ShapeError
from ..ops.linalg import linear
from .base import POSITIVE_INT, Layer, WeightSpec, single_shape
from .common_args import ACTIVATION, REGULARIZER, initializer


class Dense(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "Dense"
    DOC = "Densely connected layer on the last axis; kernel shape (input_dim, units)."
    ARGS = {
        "units": POSITIVE_INT,
        "activation": ACTIVATION,
        "use_bias": {"type": "boolean", "default": True},
        "kernel_initializer": initializer("glorot_uniform"),
        "bias_initializer": initializer("zeros"),
        "kernel_regularizer": REGULARIZER,
        "bias_regularizer": REGULARIZER,
        "activity_regularizer": REGULARIZER,
    }
    REQUIRED = ("units",)

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if len(shape) < 2 or shape[-1] is None:
            raise ShapeError(f"Dense layer '{self.name}' needs a known last axis, "
                             f"got input shape {shape}")
        return [shape[:-1] + (self.units,)]

    def weight_specs(self, input_shapes):
        specs = [WeightSpec("kernel", (input_shapes[0][-1], self.units), self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.units,), self.bias_initializer))
        return specs

    def forward(self, inputs, ctx):
        # One fused op (GEMM, bias and ReLU in place; see ops.linalg.linear); other
        # activations follow as their own op.
        config, weights = self.config, self.weights
        activation = config["activation"]
        relu = activation == "relu"
        y = linear(inputs[0], weights["kernel"],
                   weights["bias"] if config["use_bias"] else None, relu=relu)
        if relu or activation == "linear":
            return [y]
        return [ops.ACTIVATIONS[activation](y)]
