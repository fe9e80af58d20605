"""MaxPooling1D: maximum over pool_size windows of (steps, channels) inputs."""
from __future__ import annotations

from .max_pooling2d import PoolingBase
from .data_format import data_format_aware


@data_format_aware
class MaxPooling1D(PoolingBase):
    TYPE = "MaxPooling1D"
    DOC = "Max over pool_size windows of (steps, channels); strides default pool_size."
    RANK = 1
    KIND = "max"
    ARGS = PoolingBase.pool_args(1)
