"""Rescaling (Keras 3): ``x * scale + offset`` (``1/255`` to map pixels to [0, 1]).

``scale`` and ``offset`` are numbers or nested lists broadcast against the features
(batch axis excluded), as numpy broadcasts them; they are constants, not weights."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autodiff import Variable
from ..errors import ShapeError
from .base import Layer, single_shape

_VALUE = {"type": ["number", "array"], "items": {"type": ["number", "array"]},
          "maxItems": 1 << 16}


class Rescaling(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "Rescaling"
    DOC = "x * scale + offset, constants broadcast over the features (Keras 3)."
    ARGS = {"scale": dict(_VALUE, description="number or nested list broadcast to the features"),
            "offset": dict(_VALUE, default=0.0,
                           description="number or nested list broadcast to the features")}
    REQUIRED = ("scale",)

    def _constant(self, arg) -> np.ndarray:
        try:
            value = np.asarray(self.config[arg], dtype=np.float64)
        except ValueError:
            raise ShapeError(f"{self.TYPE} layer '{self.name}': {arg} must be a number or "
                             "a rectangular nested list of numbers") from None
        return value

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        for arg in ("scale", "offset"):
            value = self._constant(arg)
            features = shape[1:]
            fits = value.ndim <= len(features) and all(
                v == 1 or d is None or v == d
                for v, d in zip(value.shape[::-1], features[::-1]))
            if not fits:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': {arg} of shape "
                                 f"{value.shape} does not broadcast to the features "
                                 f"{features}")
        return [shape]

    def forward(self, inputs, ctx):
        x = inputs[0]
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        if x.dtype != dtype:
            x = ops.cast(x, dtype)
        y = ops.mul(x, Variable(self._constant("scale").astype(dtype)))
        return [ops.add(y, Variable(self._constant("offset").astype(dtype)))]
