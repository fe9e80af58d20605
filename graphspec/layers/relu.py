"""ReLU: Keras' ReLU layer, ``max_value`` (6 gives MobileNet's ReLU6), ``negative_slope``
and ``threshold``: ``x`` above ``threshold`` (capped at ``max_value``), else
``negative_slope * (x - threshold)``."""
from __future__ import annotations

from ..ops.activations import relu_general
from .base import Layer, single_shape

NON_NEGATIVE = {"type": "number", "minimum": 0}


class ReLU(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "ReLU"
    DOC = ("Rectified linear unit with Keras' max_value (null: no cap), negative_slope "
           "and threshold.")
    ARGS = {"max_value": {"type": ["number", "null"], "minimum": 0, "default": None},
            "negative_slope": dict(NON_NEGATIVE, default=0.0),
            "threshold": dict(NON_NEGATIVE, default=0.0)}

    def compute_output_shapes(self, input_shapes):
        return [single_shape(self, input_shapes)]

    def forward(self, inputs, ctx):
        return [relu_general(inputs[0], self.negative_slope, self.max_value, self.threshold)]
