"""MaxPooling2D: maximum over pool_size windows of (height, width, channels) inputs.

strides default to pool_size (``null`` means that too); 'same' padding pads with -inf,
so padding never wins. The gradient goes to the first maximum of each window. This
file also holds the base class the other window-pooling layers share.
"""
from __future__ import annotations

from ..ops.pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from .base import Layer, single_shape
from .conv2d import int_or_tuple, layer_tuple, optional_int_or_tuple, spatial_output
from .data_format import data_format_aware

POOL_OPS = {("max", 1): max_pool1d, ("max", 2): max_pool2d,
            ("avg", 1): avg_pool1d, ("avg", 2): avg_pool2d}


class PoolingBase(Layer):
    RANK = 2
    KIND = "max"

    @classmethod
    def pool_args(cls, rank: int) -> dict:
        return {
            "pool_size": int_or_tuple(rank, default=2),
            "strides": optional_int_or_tuple(rank),
            "padding": {"enum": ["valid", "same"], "default": "valid"},
        }

    def geometry(self) -> tuple:
        pool = layer_tuple(self, "pool_size", self.RANK)
        strides = pool if self.strides is None else layer_tuple(self, "strides", self.RANK)
        return pool, strides

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        pool, strides = self.geometry()
        sizes = spatial_output(self, shape, self.RANK, pool, strides, self.padding,
                               (1,) * self.RANK)
        return [(shape[0],) + sizes + (shape[-1],)]

    def forward(self, inputs, ctx):
        pool, strides = self.geometry()
        op = POOL_OPS[(self.KIND, self.RANK)]
        if self.RANK == 1:
            pool, strides = pool[0], strides[0]
        return [op(inputs[0], pool, strides, self.padding)]


@data_format_aware
class MaxPooling2D(PoolingBase):
    TYPE = "MaxPooling2D"
    DOC = "Max over pool_size windows of (height, width, channels); strides default pool_size."
    RANK = 2
    KIND = "max"
    ARGS = PoolingBase.pool_args(2)
