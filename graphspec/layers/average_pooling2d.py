"""AveragePooling2D: mean over pool_size windows of (height, width, channels) inputs.

With 'same' padding a border window averages only its real elements (TensorFlow's
behaviour; PyTorch's ``count_include_pad=False``).
"""
from __future__ import annotations

from .max_pooling2d import PoolingBase
from .data_format import data_format_aware


@data_format_aware
class AveragePooling2D(PoolingBase):
    TYPE = "AveragePooling2D"
    DOC = ("Mean over pool_size windows of (height, width, channels); strides default "
           "pool_size; 'same' padding averages real elements only.")
    RANK = 2
    KIND = "avg"
    ARGS = PoolingBase.pool_args(2)
