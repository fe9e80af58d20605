"""SimpleRNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

This file also holds :class:`RecurrentLayer`, the argument and shape rules SimpleRNN,
LSTM and GRU share. The math of each is one fused op in ``graphspec/ops/recurrent.py``
(forward and hand-written BPTT side by side); the initial state is zeros.

``dropout``/``recurrent_dropout`` follow Keras 3 (``DropoutRNNCell``): in training, one
inverted-dropout mask per sequence for the input and one for the previous state, drawn
from the run's generator when the layer is called and reused at every timestep; one mask
shared by all gates, or one per gate once ``recurrent_dropout`` is on (Keras then runs
``implementation=1``). Identity at inference.

Masks (Keras' ``RNN``): the step mask of the input (``Embedding(mask_zero)``,
``Masking``) goes into the fused op; at a masked step the states carry over unchanged
and the output repeats the previous output (zeros before the first kept step), or is
zeros with ``zero_output_for_mask`` (which Bidirectional sets with
``return_sequences``, as Keras forces it). ``go_backwards`` reverses the mask with the
inputs. The output carries the input's mask with ``return_sequences``, else none; the
returned states never carry one (Keras' ``RNN.compute_mask``).

``stateful`` (Keras): the final states of a call are the initial states of the next
call, sample by sample, so consecutive batches continue the same sequences. The state
is held on the layer (``layer.states``, plain arrays: not a weight, not saved, no
gradient flows through it into the previous batch, as Keras detaches it); the first
call fixes the batch size and a call with another batch size is an InputError (Keras
needs a fixed batch size). :meth:`RecurrentLayer.reset_states` forgets the state (the
next call starts from zeros and fixes the batch size anew);
:func:`reset_model_states` does it for every stateful layer of a model.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, ShapeError
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
        "stateful": {"type": "boolean", "default": False,
                     "description": "carry the final states of each batch into the next "
                                    "batch, sample by sample (fixed batch size; "
                                    "reset_states() starts over)"},
        "zero_output_for_mask": {"type": "boolean", "default": False,
                                 "description": "masked steps output zeros instead of "
                                                "repeating the previous output"},
    }
    REQUIRED = ("units",)
    SUPPORTS_MASKING = True
    USES_MASK = True

    def __init__(self, name: str, config: dict, trainable: bool = True):
        super().__init__(name, config, trainable)
        self.states = None       # stateful: the final states of the last call (arrays)

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

    def run(self, x, kernel, recurrent_kernel, bias, masks=(None, None), extra=None):
        """The fused op of the subclass: packed time-major outputs and final states;
        ``extra``: the op's step_mask, initial_state and zero_output arguments."""
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

    # -- masks (Keras' RNN.compute_mask) ----------------------------------------------
    def mask_sources(self, sources, n_outputs):
        first = sources[0] if sources and self.return_sequences else None
        return [first] + [None] * (n_outputs - 1)

    def compute_mask(self, inputs, masks):
        return [masks[0] if masks and self.return_sequences else None]

    # -- stateful --------------------------------------------------------------------
    def reset_states(self) -> None:
        """Forget the carried state: the next call starts from zeros (Keras'
        ``reset_states``) and fixes the batch size again."""
        self.states = None

    def _initial_state(self, batch: int):
        """The carried states of a stateful layer (None: zeros); checks the batch size."""
        if not self.stateful or self.states is None:
            return None
        expected = self.states[0].shape[0]
        if batch != expected:
            raise InputError(
                f"{self.TYPE} layer '{self.name}' is stateful: its state holds "
                f"{expected} sequences, but this batch has {batch} rows. A stateful RNN "
                "needs the same batch size on every call (Keras: a fixed batch size); "
                "predict with batch_size equal to it, or call reset_states() first")
        return self.states

    # -- the call --------------------------------------------------------------------
    def forward(self, inputs, ctx):
        return self.call_sequence(inputs[0], None, ctx)

    def forward_masked(self, inputs, masks, ctx):
        return self.call_sequence(inputs[0], masks[0], ctx)

    def call_sequence(self, x, mask, ctx, zero_output=None):
        """The layer's outputs for ``x`` with the step ``mask`` (or None);
        ``zero_output`` overrides ``zero_output_for_mask`` (Bidirectional does)."""
        batch, steps = x.shape[0], x.shape[1]
        zero = self.zero_output_for_mask if zero_output is None else zero_output
        packed = self.run(x, self.weights["kernel"], self.weights["recurrent_kernel"],
                          self.weights.get("bias") if self.use_bias else None,
                          self.dropout_masks(x, ctx),
                          dict(step_mask=mask, initial_state=self._initial_state(batch),
                               zero_output=bool(zero)))
        if self.stateful:      # the arrays only: no gradient into the previous batch
            self.states = [packed.data[steps + k].copy() for k in range(self.STATES)]
        if self.return_sequences:
            outputs = [recurrent.sequence_of(packed, steps)]
        else:
            outputs = [recurrent.step_of(packed, steps - 1)]
        if self.return_state:
            # the packed rows after the outputs: h_T, then for the LSTM c_T
            outputs += [recurrent.step_of(packed, steps + k) for k in range(self.STATES)]
        return outputs


def stateful_layers(model) -> list:
    """The stateful recurrent layers of ``model``, sub-models and wrappers included
    (``model.layers()`` is graph.walk's walk; layers/ cannot import graph/)."""
    return [layer for layer in model.layers()
            if isinstance(layer, RecurrentLayer) and layer.stateful]


def reset_model_states(model) -> int:
    """``reset_states()`` on every stateful recurrent layer of ``model``; returns how
    many were reset."""
    layers = stateful_layers(model)
    for layer in layers:
        layer.reset_states()
    return len(layers)


class SimpleRNN(RecurrentLayer):
    TYPE = "SimpleRNN"
    DOC = ("Fully connected recurrent layer; kernel (features, units), recurrent_kernel "
           "(units, units). With return_state it returns [output, h].")
    ARGS = dict(RecurrentLayer.ARGS)

    def run(self, x, kernel, recurrent_kernel, bias, masks=(None, None), extra=None):
        return recurrent.simple_rnn(x, kernel, recurrent_kernel, bias,
                                    activation=self.activation,
                                    go_backwards=self.go_backwards,
                                    input_mask=masks[0], recurrent_mask=masks[1],
                                    **(extra or {}))
