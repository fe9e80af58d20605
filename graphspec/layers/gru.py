"""GRU (Keras 3 semantics): gates ``[z, r, h]`` in the columns of kernel
``(features, 3u)`` and recurrent_kernel ``(u, 3u)``.

``reset_after=True`` (the default, PyTorch's formulation) applies the reset gate after
the recurrent product and has bias ``(2, 3u)``: row 0 the input bias, row 1 the
recurrent bias. ``reset_after=False`` applies it before, with bias ``(3u,)``. The whole
sequence is one fused op (``graphspec.ops.recurrent.gru``). With ``return_state`` the
layer returns ``[output, h]``.
"""
from __future__ import annotations

from ..ops import recurrent
from .base import WeightSpec
from .simple_rnn import RecurrentLayer, activation_arg


class GRU(RecurrentLayer):
    TYPE = "GRU"
    DOC = ("Gated recurrent unit (Keras gate order z, r, h; reset_after=True matches "
           "PyTorch). With return_state it returns [output, h].")
    GATES = 3
    STATES = 1
    ARGS = dict(RecurrentLayer.ARGS,
                recurrent_activation=activation_arg("sigmoid"),
                reset_after={"type": "boolean", "default": True,
                             "description": "apply the reset gate after the recurrent "
                                            "product (bias (2, 3*units))"})

    def bias_spec(self):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return WeightSpec("bias", shape, self.bias_initializer)

    def run(self, x, kernel, recurrent_kernel, bias, masks=(None, None), extra=None):
        return recurrent.gru(x, kernel, recurrent_kernel, bias,
                             activation=self.activation,
                             recurrent_activation=self.recurrent_activation,
                             go_backwards=self.go_backwards, reset_after=self.reset_after,
                             input_mask=masks[0], recurrent_mask=masks[1],
                             **(extra or {}))
