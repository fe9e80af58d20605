"""Bidirectional: run a recurrent layer forwards and a copy of it backwards, then merge.

The forward direction is the wrapped instance itself; the backward direction is a new
instance of the same class with the same arguments and ``go_backwards`` toggled, named
``backward_<inner name>`` with its own weights. As in Keras, when ``return_sequences``
is set the backward layer's sequence (which comes out in processing order) is reversed
back before merging, so both directions line up timestep by timestep.

Outputs: ``[merged]``, or ``[forward, backward]`` with ``merge_mode: null``; with
``return_state`` the forward layer's states then the backward layer's follow
(``[out, h_fw, c_fw, h_bw, c_bw]`` for an LSTM).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..ops import recurrent
from .base import Layer
from .simple_rnn import RecurrentLayer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    TYPE = "Bidirectional"
    DOC = ("Runs a recurrent layer forwards and a copy of it backwards over the sequence "
           "and merges the two outputs.")
    ARGS = {
        "layer": {"description": "the wrapped recurrent layer: an inline layer mapping or "
                                 "a layer name"},
        "merge_mode": {"enum": list(MERGE_MODES), "default": "concat",
                       "description": "how the two directions are combined; null returns "
                                      "both"},
    }
    REQUIRED = ("layer",)
    WRAPS = ("layer",)

    def __init__(self, name: str, config: dict, trainable: bool = True):
        super().__init__(name, config, trainable)
        inner = self.config["layer"]
        if not isinstance(inner, RecurrentLayer):
            kind = getattr(inner, "TYPE", type(inner).__name__)
            raise ShapeError(f"Bidirectional layer '{name}' wraps a recurrent layer "
                             f"(SimpleRNN, LSTM or GRU), got {kind} "
                             f"'{getattr(inner, 'name', inner)}'")
        if self.config["merge_mode"] not in MERGE_MODES:
            raise ShapeError(f"Bidirectional layer '{name}': merge_mode must be one of "
                             f"{list(MERGE_MODES)}, got {self.config['merge_mode']!r}")
        self.forward_layer = inner
        self.backward_layer = type(inner)(
            f"backward_{inner.name}",
            dict(inner.config, go_backwards=not inner.config["go_backwards"]),
            trainable=inner.trainable)

    def sublayers(self):
        return [self.forward_layer, self.backward_layer]

    def param_count(self):
        return 0, 0   # each direction counts its own weights

    def compute_output_shapes(self, input_shapes):
        fw = self.forward_layer.compute_output_shapes(input_shapes)
        bw = self.backward_layer.compute_output_shapes(input_shapes)
        y, states = tuple(fw[0]), list(fw[1:]) + list(bw[1:])
        if self.merge_mode is None:
            return [y, tuple(bw[0])] + states
        if self.merge_mode == "concat":
            y = y[:-1] + (2 * y[-1],)
        return [y] + states

    def register_weights(self, input_shapes):
        self.forward_layer.register_weights(input_shapes)
        self.backward_layer.register_weights(input_shapes)

    def forward(self, inputs, ctx):
        fw = self.forward_layer.forward(inputs, ctx)
        bw = self.backward_layer.forward(inputs, ctx)
        y, y_rev, states = fw[0], bw[0], list(fw[1:]) + list(bw[1:])
        if self.forward_layer.return_sequences:
            y_rev = recurrent.reverse_time(y_rev)
        mode = self.merge_mode
        if mode is None:
            return [y, y_rev] + states
        if mode == "concat":
            out = ops.concatenate([y, y_rev], axis=-1)
        elif mode == "sum":
            out = ops.add(y, y_rev)
        elif mode == "mul":
            out = ops.mul(y, y_rev)
        else:  # ave
            out = ops.mul(ops.add(y, y_rev), np.asarray(0.5, dtype=y.dtype))
        return [out] + states
