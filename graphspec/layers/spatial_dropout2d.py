"""SpatialDropout2D: Dropout of whole feature maps of a (rows, cols, channels) input,
one draw per sample and channel (Keras 3); identity at inference. ``data_format:
channels_first`` takes (channels, rows, cols) inputs, as Keras does."""
from __future__ import annotations

from .spatial_dropout1d import RATE, SpatialDropout1D


class SpatialDropout2D(SpatialDropout1D):
    TYPE = "SpatialDropout2D"
    DOC = "Drops whole feature maps of (rows, cols, channels) inputs while training (Keras 3)."
    ARGS = {"rate": RATE,
            "data_format": {"enum": ["channels_last", "channels_first"],
                            "default": "channels_last",
                            "description": "where the channel axis is"}}
    RANK = 4

    def noise_shape(self, shape) -> tuple:
        if self.data_format == "channels_first":
            return (shape[0], shape[1], 1, 1)
        return super().noise_shape(shape)
