"""Bidirectional: run a recurrent layer forwards and a copy of it backwards, then merge.

The forward direction is the wrapped instance itself; the backward direction is, as in
Keras, a new instance of the same class with the same arguments and ``go_backwards:
true``, named ``backward_<inner name>`` with its own weights, or the inline layer
``backward_layer`` (Keras' ``backward_layer``: its own class and arguments, e.g. other
units). Keras' rules hold: the two directions must differ in ``go_backwards`` (so a
wrapped layer with ``go_backwards: true`` needs a ``backward_layer``) and agree in
``return_sequences`` and ``return_state``. As in Keras, when ``return_sequences``
is set the backward layer's sequence (which comes out in processing order) is reversed
back before merging, so both directions line up timestep by timestep.

Outputs: ``[merged]``, or ``[forward, backward]`` with ``merge_mode: null``; with
``return_state`` the forward layer's states then the backward layer's follow
(``[out, h_fw, c_fw, h_bw, c_bw]`` for an LSTM).

Masks (Keras): both directions get the input's mask (the backward one reverses it with
the sequence) and, with ``return_sequences``, output zeros at masked steps (Keras'
Bidirectional forces ``zero_output_for_mask = return_sequences`` on both). The merged
output (each output with ``merge_mode: null``) carries the input's mask when
``return_sequences``, else none; the states none (Keras' ``Bidirectional.compute_mask``).
``stateful`` comes from the wrapped layer and holds in both directions.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..ops import recurrent
from .base import Layer
from .gru import GRU
from .lstm import LSTM
from .simple_rnn import RecurrentLayer, SimpleRNN

# The layers a backward_layer may be, by type (not the registry: it imports this file), and
# the keys of a layer entry that are not the layer's arguments (spec/schema.py's list).
_RECURRENT = {cls.TYPE: cls for cls in (SimpleRNN, LSTM, GRU)}
_LAYER_KEYS = ("type", "name", "trainable", "description")

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
        "backward_layer": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/layer"}],
                           "default": None,
                           "description": "an inline recurrent layer for the backward "
                                          "direction (Keras' backward_layer); default: "
                                          "the wrapped layer with go_backwards: true"},
    }
    REQUIRED = ("layer",)
    WRAPS = ("layer",)
    SUPPORTS_MASKING = True
    USES_MASK = True

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
        spec = self.config["backward_layer"]
        if spec is None:
            self.backward_layer = type(inner)(f"backward_{inner.name}",
                                              dict(inner.config, go_backwards=True),
                                              trainable=inner.trainable)
        else:
            self.backward_layer = self._backward_from(spec)
        self._verify_layer_config()

    def _backward_from(self, spec):
        """The inline ``backward_layer`` mapping as a layer instance."""
        kind = spec.get("type") if isinstance(spec, dict) else None
        cls = _RECURRENT.get(kind)
        if cls is None or not issubclass(cls, RecurrentLayer):
            raise ShapeError(f"Bidirectional layer '{self.name}': backward_layer must be an "
                             f"inline recurrent layer (SimpleRNN, LSTM or GRU), got "
                             f"{kind or type(spec).__name__}")
        args = {k: v for k, v in spec.items() if k not in _LAYER_KEYS}
        return cls(spec.get("name") or f"backward_{self.forward_layer.name}", args,
                   trainable=spec.get("trainable", True))

    def _verify_layer_config(self):
        """Keras' ``Bidirectional._verify_layer_config``, with its messages."""
        fw, bw = self.forward_layer, self.backward_layer
        if fw.go_backwards == bw.go_backwards:
            raise ShapeError(
                f"Bidirectional layer '{self.name}': Forward layer and backward layer "
                "should have different `go_backwards` value. Received: "
                f"forward_layer.go_backwards {fw.go_backwards}, "
                f"backward_layer.go_backwards={bw.go_backwards}"
                + ("" if self.config["backward_layer"] is not None else
                   " (the wrapped layer has go_backwards: true; give a backward_layer)"))
        for a in ("stateful", "return_sequences", "return_state"):
            if fw.config[a] != bw.config[a]:
                raise ShapeError(
                    f"Bidirectional layer '{self.name}': Forward layer and backward layer "
                    f'are expected to have the same value for attribute "{a}", got '
                    f'"{fw.config[a]}" for forward layer and "{bw.config[a]}" for '
                    "backward layer")

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
            return [y[:-1] + (y[-1] + bw[0][-1],)] + states
        if tuple(bw[0]) != y:
            raise ShapeError(f"Bidirectional layer '{self.name}': merge_mode "
                             f"{self.merge_mode!r} needs both directions of the same shape, "
                             f"got {y} and {tuple(bw[0])} (units differ)")
        return [y] + states

    def register_weights(self, input_shapes):
        self.forward_layer.register_weights(input_shapes)
        self.backward_layer.register_weights(input_shapes)

    def mask_sources(self, sources, n_outputs):
        source = sources[0] if sources and self.forward_layer.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        return [source] * n_out + [None] * (n_outputs - n_out)

    def compute_mask(self, inputs, masks):
        mask = masks[0] if masks and self.forward_layer.return_sequences else None
        return [mask] * (2 if self.merge_mode is None else 1)

    def forward(self, inputs, ctx):
        return self.forward_masked(inputs, [None], ctx)

    def forward_masked(self, inputs, masks, ctx):
        zero = self.forward_layer.return_sequences     # Keras forces this on both
        fw = self.forward_layer.call_sequence(inputs[0], masks[0], ctx, zero)
        bw = self.backward_layer.call_sequence(inputs[0], masks[0], ctx, zero)
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
