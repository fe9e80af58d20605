"""A model: input tensors, the nodes that connect them, output tensors.

This is the structure only (Keras' Functional): inputs, outputs, nodes, the walk over
its layers, and the node loop. Predicting and training (Keras' Trainer methods) live
above it, in :mod:`graphspec.train.frontend`, whose ``Model`` subclass is what
``graphspec.load`` returns; nothing here imports upward.

A model is also a layer: calling it inside another model makes one node of the model,
and running that node runs the model's own nodes on the new inputs, with the same layer
instances and therefore the same weights (Keras' Container). Several models over the
same layer instances are alternate entry points into one set of weights.
"""
from __future__ import annotations

from ..errors import ShapeError
from ..io.arrays import check_inputs, shapes_compatible
from ..io.arrays import format_shape as _fmt  # noqa: F401  (engines/ imports it from here)
from ..layers.base import CallContext, call_mask_sources
from .walk import iter_layers
from .walk import param_count as walk_param_count


class Model:
    TYPE = "Model"
    # Keras' Functional: masks on its inputs flow through its layers, and its outputs
    # carry the masks its last layers give them.
    SUPPORTS_MASKING = True
    USES_MASK = True

    def __init__(self, name: str, inputs: list, outputs: list, nodes: list,
                 trainable: bool = True, graph=None):
        self.name = name
        self.inputs = inputs            # SymbolicTensors, in declaration order
        self.outputs = outputs          # SymbolicTensors, in declaration order
        self.nodes = nodes              # Nodes in execution order
        self.trainable = trainable
        self.graph = graph
        self.inbound_nodes: list = []   # nodes where this model is called as a layer
        self._slots = self._assign_slots()

    # -- structure ------------------------------------------------------------------
    @property
    def input_names(self):
        return [t.name for t in self.inputs]

    @property
    def output_names(self):
        return [t.name for t in self.outputs]

    def _assign_slots(self) -> int:
        count = 0
        for tensor in self.inputs:
            tensor.slot, count = count, count + 1
        for node in self.nodes:
            for tensor in node.output_tensors:
                tensor.slot, count = count, count + 1
        return count

    def tensor(self, name: str):
        """The symbolic tensor called ``name`` in this model (inputs or call outputs)."""
        for tensor in self.inputs:
            if tensor.name == name:
                return tensor
        for node in self.nodes:
            for tensor in node.output_tensors:
                if tensor.name == name:
                    return tensor
        raise KeyError(f"model '{self.name}' has no tensor named '{name}'")

    def sublayers(self) -> list:
        return [node.layer for node in self.nodes]

    def layers(self, freeze=()) -> list:
        """Every layer instance this model uses, sub-models expanded, each once, in order."""
        return [use.layer for use in iter_layers(self, freeze)]

    def layer_uses(self, freeze=()) -> list:
        """:class:`~graphspec.graph.walk.LayerUse` per layer: the layer, whether a job on
        this model trains it (Keras' AND over the containing models), its path."""
        return list(iter_layers(self, freeze))

    def param_count(self, freeze=()) -> tuple:
        """(trainable, non-trainable) weight elements, counted as a job trains them."""
        return walk_param_count(self, freeze)

    def summary(self, print_fn=print) -> str:
        """Keras' ``model.summary()``: prints the table (``print_fn=None``: silent) and
        returns it."""
        from .summary import summary
        text = summary(self)
        if print_fn is not None:
            print_fn(text)
        return text

    # -- used as a layer ------------------------------------------------------------
    def check_input_count(self, count: int) -> None:
        if count != len(self.inputs):
            raise ShapeError(f"model '{self.name}' takes {len(self.inputs)} input tensor(s) "
                             f"({', '.join(self.input_names)}), got {count}")

    def compute_output_shapes(self, input_shapes: list) -> list:
        self.check_input_count(len(input_shapes))
        for tensor, shape in zip(self.inputs, input_shapes):
            if not shapes_compatible(tensor.shape, tuple(shape)):
                raise ShapeError(f"model '{self.name}' input '{tensor.name}' expects shape "
                                 f"{tensor.shape}, got {tuple(shape)}")
        return [t.shape for t in self.outputs]

    def register_weights(self, input_shapes) -> None:
        """A model's weights are its layers' weights, fixed when the model was compiled."""

    def forward(self, inputs: list, ctx: CallContext) -> list:
        values = self.run(inputs, ctx)
        return [values[t.slot] for t in self.outputs]

    # -- masks (layers/base.py describes the contract) ----------------------------------
    def makes_mask(self) -> bool:
        return any(node.layer.makes_mask() for node in self.nodes)

    def mask_sources(self, sources: list, n_outputs: int) -> list:
        """The masks this model's outputs carry when it is called on inputs carrying
        ``sources`` (a static pass over its nodes; its own tensors keep the masks of the
        model run on its own, unmasked inputs)."""
        known = {id(t): s for t, s in zip(self.inputs, sources)}
        for node in self.nodes:
            ins = [known.get(id(t)) for t in node.input_tensors]
            outs = call_mask_sources(node.layer, ins, len(node.output_tensors))
            for tensor, source in zip(node.output_tensors, outs):
                known[id(tensor)] = source
        return [known.get(id(t)) for t in self.outputs]

    def call_masked(self, inputs: list, masks: list, ctx: CallContext) -> tuple:
        values, value_masks = self.run_with_masks(inputs, ctx, masks)
        return ([values[t.slot] for t in self.outputs],
                [value_masks[t.slot] for t in self.outputs])

    def forward_masked(self, inputs: list, masks: list, ctx: CallContext) -> list:
        return self.call_masked(inputs, masks, ctx)[0]

    def compute_mask(self, inputs: list, masks: list) -> list:
        raise TypeError("a model's output masks come from call_masked (one run)")

    # -- execution ------------------------------------------------------------------
    def run(self, inputs: list, ctx: CallContext) -> list:
        """Run every node; returns the value of every tensor, indexed by ``tensor.slot``.

        This is the whole executor: the graph is already in execution order.
        """
        plan = self._plan()
        if plan[3]:                     # a layer makes a mask: the masked loop
            return self.run_with_masks(inputs, ctx)[0]
        values = [None] * self._slots
        for tensor, value in zip(self.inputs, inputs):
            values[tensor.slot] = value
        activity = ctx.activity
        for layer, reads, writes, regularizer, _ in plan[2]:
            outs = layer.forward([values[i] for i in reads], ctx)
            if len(writes) == 1:
                values[writes[0]] = outs[0]
            else:
                for i, value in zip(writes, outs):
                    values[i] = value
            if regularizer is not None and activity is not None:
                activity.append((regularizer, outs))
        return values

    def _plan(self) -> tuple:
        """``(nodes, count, steps, makes_masks)``: the slots each node reads and writes,
        worked out once per node list, so a run is one list lookup per input and output
        (the per-node overhead counts for models of many small layers)."""
        plan = self.__dict__.get("_run_plan")
        if plan is None or plan[0] is not self.nodes or plan[1] != len(self.nodes):
            steps = [(node.layer, [t.slot for t in node.input_tensors],
                      [t.slot for t in node.output_tensors],
                      _activity_config(node.layer), node.layer.makes_mask())
                     for node in self.nodes]
            plan = self._run_plan = (self.nodes, len(self.nodes), steps,
                                     any(step[4] for step in steps))
        return plan

    def run_with_masks(self, inputs: list, ctx: CallContext, masks: list | None = None):
        """``(values, masks)`` indexed by ``tensor.slot``: :meth:`run` with the masks
        (boolean arrays, or None) that travel beside the values; ``masks``: the inputs'."""
        plan = self._plan()
        if not plan[3] and all(m is None for m in masks or ()):
            return self.run(inputs, ctx), [None] * self._slots     # no mask anywhere
        values, value_masks = [None] * self._slots, [None] * self._slots
        for tensor, value in zip(self.inputs, inputs):
            values[tensor.slot] = value
        for tensor, mask in zip(self.inputs, masks or ()):
            value_masks[tensor.slot] = mask
        activity = ctx.activity
        for layer, reads, writes, regularizer, makes in plan[2]:
            ins = [values[i] for i in reads]
            in_masks = [value_masks[i] for i in reads]
            if makes or any(m is not None for m in in_masks):
                outs, out_masks = layer.call_masked(ins, in_masks, ctx)
                for i, mask in zip(writes, out_masks):
                    value_masks[i] = mask
            else:
                outs = layer.forward(ins, ctx)
            for i, value in zip(writes, outs):
                values[i] = value
            if regularizer is not None and activity is not None:
                activity.append((regularizer, outs))
        return values, value_masks

    def check_inputs(self, inputs, offset: int = 0) -> dict:
        """Arrays keyed by input name, checked and cast (:mod:`graphspec.io.arrays`)."""
        return check_inputs(self, inputs, offset)

    def index_limits(self) -> dict:
        """``{input name: (rows, reason)}`` for inputs used as indices into a table (an
        Embedding's ``input_dim``): the smallest table any call reads them with."""
        limits = {}
        for i, tensor in enumerate(self.inputs):
            limit = self.index_limit(i)
            if limit is not None:
                limits[tensor.name] = limit
        return limits

    def index_limit(self, index: int):
        """The index limit of input ``index`` (a model called as a layer passes it on)."""
        tensor, best = self.inputs[index], None
        for node in self.nodes:
            for j, inbound in enumerate(node.input_tensors):
                if inbound is tensor:
                    limit = node.layer.index_limit(j)
                    if limit is not None and (best is None or limit[0] < best[0]):
                        best = limit
        return best

    def __repr__(self):
        return f"<Model '{self.name}' inputs={self.input_names} outputs={self.output_names}>"


def _activity_config(layer):
    config = getattr(layer, "config", None)
    return config.get("activity_regularizer") if isinstance(config, dict) else None
