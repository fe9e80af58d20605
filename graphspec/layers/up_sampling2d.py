"""UpSampling2D: (B, H, W, C) -> (B, H*sh, W*sw, C) by ``nearest`` (rows and columns
repeated, Keras' default) or ``bilinear`` interpolation (half-pixel centres, edges
clamped: Keras' ``image.resize`` without antialiasing, PyTorch's
``align_corners=False``)."""
from __future__ import annotations

from ..ops.resize import repeat, upsample_bilinear2d
from .base import Layer
from .conv2d import int_or_tuple, layer_tuple
from .zero_padding2d import image_shape
from .data_format import data_format_aware


@data_format_aware
class UpSampling2D(Layer):
    TYPE = "UpSampling2D"
    DOC = "Enlarges height and width by integer factors size: nearest or bilinear."
    ARGS = {"size": int_or_tuple(2, default=2),
            "interpolation": {"enum": ["nearest", "bilinear"], "default": "nearest"}}

    def factors(self) -> tuple:
        return layer_tuple(self, "size", 2)

    def compute_output_shapes(self, input_shapes):
        shape = image_shape(self, input_shapes)
        sh, sw = self.factors()
        return [(shape[0], None if shape[1] is None else shape[1] * sh,
                 None if shape[2] is None else shape[2] * sw, shape[3])]

    def forward(self, inputs, ctx):
        factors = self.factors()
        if self.interpolation == "bilinear":
            return [upsample_bilinear2d(inputs[0], factors)]
        return [repeat(repeat(inputs[0], factors[0], axis=1), factors[1], axis=2)]
