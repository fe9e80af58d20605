"""SpatialDropout2D: Dropout of whole feature maps of a (rows, cols, channels) input,
one draw per sample and channel (Keras 3, channels last); identity at inference."""
from __future__ import annotations

from .spatial_dropout1d import RATE, SpatialDropout1D


class SpatialDropout2D(SpatialDropout1D):
    TYPE = "SpatialDropout2D"
    DOC = "Drops whole feature maps of (rows, cols, channels) inputs while training (Keras 3)."
    ARGS = {"rate": RATE, "data_format": {"enum": ["channels_last"], "default": "channels_last",
                                          "description": "channels_last only"}}
    RANK = 4
