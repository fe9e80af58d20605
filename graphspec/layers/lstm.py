"""LSTM (Keras semantics): gates ``[i, f, c, o]`` in the columns of kernel
``(features, 4u)``, recurrent_kernel ``(u, 4u)`` and bias ``(4u,)``.

The whole sequence is one fused op (``graphspec.ops.recurrent.lstm``): one GEMM for
the input projection of every timestep, one recurrent GEMM per step, and a hand-written
BPTT backward. With ``return_state`` the layer returns ``[output, h, c]``.
"""
from __future__ import annotations

import numpy as np

from ..initializers import INITIALIZERS
from ..ops import recurrent
from .base import WeightSpec
from .simple_rnn import RecurrentLayer, activation_arg


class UnitForgetBias:
    """Keras' ``unit_forget_bias``: the bias initializer, with the forget-gate block
    (the second quarter) set to ones. A callable ``(shape, rng) -> ndarray``."""

    def __init__(self, base: str, units: int):
        self.base, self.units = base, int(units)
        self.name = f"unit_forget_bias({base})"

    def __call__(self, shape, rng):
        u = self.units
        init = INITIALIZERS[self.base]
        return np.concatenate([np.asarray(init((u,), rng), dtype=np.float64),
                               np.ones(u),
                               np.asarray(init((2 * u,), rng), dtype=np.float64)])

    def __eq__(self, other):
        return isinstance(other, UnitForgetBias) and \
            (self.base, self.units) == (other.base, other.units)

    def __hash__(self):
        return hash((self.base, self.units))

    def __repr__(self):
        return self.name


class LSTM(RecurrentLayer):
    TYPE = "LSTM"
    DOC = ("Long short-term memory layer (Keras gate order i, f, c, o). With "
           "return_state it returns [output, h, c].")
    GATES = 4
    STATES = 2
    ARGS = dict(RecurrentLayer.ARGS,
                recurrent_activation=activation_arg("sigmoid"),
                unit_forget_bias={"type": "boolean", "default": True,
                                  "description": "initialise the forget-gate bias to 1"})

    def bias_spec(self):
        init = UnitForgetBias(self.bias_initializer, self.units) if self.unit_forget_bias \
            else self.bias_initializer
        return WeightSpec("bias", (4 * self.units,), init)

    def run(self, x, kernel, recurrent_kernel, bias, masks=(None, None), extra=None):
        return recurrent.lstm(x, kernel, recurrent_kernel, bias,
                              activation=self.activation,
                              recurrent_activation=self.recurrent_activation,
                              go_backwards=self.go_backwards,
                              input_mask=masks[0], recurrent_mask=masks[1],
                              **(extra or {}))
