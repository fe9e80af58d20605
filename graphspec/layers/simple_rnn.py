"""SimpleRNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

This file also holds :class:`RecurrentLayer`, the argument and shape rules SimpleRNN,
LSTM and GRU share. The math of each is one fused op in ``graphspec/ops/recurrent.py``
(forward and hand-written BPTT side by side); the initial state is zeros.
"""
from __future__ import annotations

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

    def run(self, x, kernel, recurrent_kernel, bias):
        """The fused op of the subclass: packed time-major states."""
        raise NotImplementedError

    def forward(self, inputs, ctx):
        x = inputs[0]
        steps = x.shape[1]
        packed = self.run(x, self.weights["kernel"], self.weights["recurrent_kernel"],
                          self.weights.get("bias") if self.use_bias else None)
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

    def run(self, x, kernel, recurrent_kernel, bias):
        return recurrent.simple_rnn(x, kernel, recurrent_kernel, bias,
                                    activation=self.activation,
                                    go_backwards=self.go_backwards)
