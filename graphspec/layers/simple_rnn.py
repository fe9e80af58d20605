"""SimpleRNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

This file also holds :class:`RecurrentLayer`, the argument and shape rules SimpleRNN,
LSTM and GRU share. The math of each is one fused op in ``graphspec/ops/recurrent.py``
(forward and hand-written BPTT side by side); the initial state is zeros.

``dropout``/``recurrent_dropout`` follow Keras 3 (``DropoutRNNCell``): in training, one
inverted-dropout mask per sequence for the input and one for the previous state, drawn
from the run's generator when the layer is called and reused at every timestep; one mask
shared by all gates, or one per gate once ``recurrent_dropout`` is on (Keras then runs
``implementation=1``). Identity at inference.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops import recurrent
from .base import POSITIVE_INT, Layer, WeightSpec, single_shape
from .common_args import REGULARIZER, initializer

RECURRENT_ACTIVATION_NAMES = sorted(recurrent.RECURRENT_ACTIVATIONS)


def activation_arg(default: str) -> dict:
    return {"enum": RECURRENT_ACTIVATION_NAMES, "default": default,
            "description": "Keras activation name (one whose derivative follows from "
                           "its output)"}


class RecurrentLayer(Layer):
    """Shared by SimpleRNN, LSTM and GRU: input ``(batch, timesteps, features)``."""
    GATES = 1          # blocks of ``units`` columns in the kernels
    STATES = 1         # state tensors returned by ``return_state``
    ARGS = {
        "units": POSITIVE_INT,
        "activation": activation_arg("tanh"),
        "use_bias": {"type": "boolean", "default": True},
        "kernel_initializer": initializer("glorot_uniform"),
        "recurrent_initializer": initializer("orthogonal"),
        "bias_initializer": initializer("zeros"),
        "kernel_regularizer": REGULARIZER,
        "recurrent_regularizer": REGULARIZER,
        "bias_regularizer": REGULARIZER,
        "activity_regularizer": REGULARIZER,
        "return_sequences": {"type": "boolean", "default": False,
                             "description": "return the whole output sequence "
                                            "(batch, timesteps, units), not only the last"},
        "return_state": {"type": "boolean", "default": False,
                         "description": "also return the final state tensor(s)"},
        "go_backwards": {"type": "boolean", "default": False,
                         "description": "process the sequence backwards; the returned "
                                        "sequence is then reversed too (Keras)"},
        "dropout": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.0,
                    "description": "training only: fraction of the input features "
                                   "dropped, one mask per sequence reused at every step"},
        "recurrent_dropout": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                              "default": 0.0,
                              "description": "training only: fraction of the previous "
                                             "state dropped before the recurrent product, "
                                             "one mask per sequence (one per gate)"},
    }
    REQUIRED = ("units",)

    def sequence_shape(self, input_shapes) -> tuple:
        shape = single_shape(self, input_shapes)
        if len(shape) != 3 or shape[-1] is None:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs input of shape "
                             f"(batch, timesteps, features) with known features, got "
                             f"{shape}")
        if shape[1] == 0:
            raise ShapeError(f"{self.TYPE} layer '{self.name}' needs at least one "
                             f"timestep, got input shape {shape}")
        return shape

    def compute_output_shapes(self, input_shapes):
        shape = self.sequence_shape(input_shapes)
        out = (None, shape[1], self.units) if self.return_sequences else (None, self.units)
        return [out] + ([(None, self.units)] * self.STATES if self.return_state else [])

    def bias_spec(self):
        return WeightSpec("bias", (self.GATES * self.units,), self.bias_initializer)

    def weight_specs(self, input_shapes):
        features = self.sequence_shape(input_shapes)[-1]
        width = self.GATES * self.units
        specs = [WeightSpec("kernel", (features, width), self.kernel_initializer),
                 WeightSpec("recurrent_kernel", (self.units, width),
                            self.recurrent_initializer)]
        if self.use_bias:
            specs.append(self.bias_spec())
        return specs

    def run(self, x, kernel, recurrent_kernel, bias, masks=(None, None)):
        """The fused op of the subclass: packed time-major states."""
        raise NotImplementedError

    def dropout_masks(self, x, ctx) -> tuple:
        """Keras' masks for one call: ``(input (G, B, F), recurrent (G, B, units))``,
        None where off. G is the number of gates once recurrent_dropout is on (Keras'
        ``dropout_mask_count``), else 1. Inverted: kept entries are 1 / (1 - rate)."""
        if not ctx.training or (not self.dropout and not self.recurrent_dropout):
            return None, None
        count = self.GATES if self.recurrent_dropout else 1
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else \
            self.weights["kernel"].data.dtype
        batch, _, features = x.shape
        out = []
        for rate, width in ((self.dropout, features), (self.recurrent_dropout, self.units)):
            if not rate:
                out.append(None)
                continue
            keep = ctx.rng.random((count, batch, width)) >= rate
            out.append(keep.astype(dtype) / dtype.type(1 - rate))
        return tuple(out)

    def forward(self, inputs, ctx):
        x = inputs[0]
        steps = x.shape[1]
        packed = self.run(x, self.weights["kernel"], self.weights["recurrent_kernel"],
                          self.weights.get("bias") if self.use_bias else None,
                          self.dropout_masks(x, ctx))
        if self.return_sequences:
            outputs = [recurrent.sequence_of(packed, steps)]
        else:
            outputs = [recurrent.step_of(packed, steps - 1)]
        if self.return_state:
            # final states: h_T (row T-1), then for the LSTM c_T (row T)
            outputs += [recurrent.step_of(packed, steps - 1 + k) for k in range(self.STATES)]
        return outputs


class SimpleRNN(RecurrentLayer):
    TYPE = "SimpleRNN"
    DOC = ("Fully connected recurrent layer; kernel (features, units), recurrent_kernel "
           "(units, units). With return_state it returns [output, h].")
    ARGS = dict(RecurrentLayer.ARGS)

    def run(self, x, kernel, recurrent_kernel, bias, masks=(None, None)):
        return recurrent.simple_rnn(x, kernel, recurrent_kernel, bias,
                                    activation=self.activation,
                                    go_backwards=self.go_backwards,
                                    input_mask=masks[0], recurrent_mask=masks[1])
