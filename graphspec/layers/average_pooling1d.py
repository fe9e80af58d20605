"""AveragePooling1D: mean over pool_size windows of (steps, channels) inputs; 'same'
padding averages the real elements only (as Keras)."""
from __future__ import annotations

from .max_pooling2d import PoolingBase
from .data_format import data_format_aware


@data_format_aware
class AveragePooling1D(PoolingBase):
    TYPE = "AveragePooling1D"
    DOC = ("Mean over pool_size windows of (steps, channels); strides default pool_size; "
           "'same' padding averages real elements only.")
    RANK = 1
    KIND = "avg"
    ARGS = PoolingBase.pool_args(1)
