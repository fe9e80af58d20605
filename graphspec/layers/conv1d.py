"""Conv1D: 1-D convolution over (steps, channels) inputs, Keras arguments and defaults.

Kernel ``(k, in_channels, filters)``; padding 'valid', 'same' or 'causal' (left zeros
only, so output ``t`` never sees input after ``t``). Runs as a height-1 Conv2D.
"""
from __future__ import annotations

from .conv2d import ConvBase
from .data_format import data_format_aware


@data_format_aware
class Conv1D(ConvBase):
    TYPE = "Conv1D"
    DOC = ("1-D convolution over (steps, channels) inputs; kernel shape "
           "(kernel_size, in_channels, filters); padding valid, same or causal.")
    RANK = 1
    ARGS = ConvBase.conv_args(1, ["valid", "same", "causal"])
