"""A model: input tensors, the nodes that connect them, output tensors.

A model is also a layer: calling it inside another model makes one node of the model,
and running that node runs the model's own nodes on the new inputs, with the same layer
instances and therefore the same weights (Keras' Container). Several models over the
same layer instances are alternate entry points into one set of weights.
"""
from __future__ import annotations

import numpy as np

from ..autodiff import Variable, recording
from ..errors import InputError, ShapeError
from ..layers.base import CallContext
from .walk import iter_layers
from .walk import param_count as walk_param_count


class Model:
    TYPE = "Model"

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

    # -- execution ------------------------------------------------------------------
    def run(self, inputs: list, ctx: CallContext) -> list:
        """Run every node; returns the value of every tensor, indexed by ``tensor.slot``.

        This is the whole executor: the graph is already in execution order.
        """
        # The slots each node reads and writes, worked out once per node list: a run
        # is then one list lookup per input and output (the per-node overhead counts
        # for models of many small layers).
        plan = self.__dict__.get("_run_plan")
        if plan is None or plan[0] is not self.nodes or plan[1] != len(self.nodes):
            steps = [(node.layer, [t.slot for t in node.input_tensors],
                      [t.slot for t in node.output_tensors],
                      _activity_config(node.layer)) for node in self.nodes]
            plan = self._run_plan = (self.nodes, len(self.nodes), steps)
        values = [None] * self._slots
        for tensor, value in zip(self.inputs, inputs):
            values[tensor.slot] = value
        activity = ctx.activity
        for layer, reads, writes, regularizer in plan[2]:
            outs = layer.forward([values[i] for i in reads], ctx)
            if len(writes) == 1:
                values[writes[0]] = outs[0]
            else:
                for i, value in zip(writes, outs):
                    values[i] = value
            if regularizer is not None and activity is not None:
                activity.append((regularizer, outs))
        return values

    def predict(self, inputs, batch_size: int | None = None, seed: int | None = None) -> dict:
        """Outputs keyed by output name, for inputs keyed by input name.

        A single-input model also takes a bare array. Batches of ``batch_size`` are run
        one after the other and the outputs concatenated (same result, bounded memory).
        """
        from ..autodiff.engine import tune_allocator
        tune_allocator()
        arrays = self.check_inputs(inputs)
        n = next(iter(arrays.values())).shape[0]
        step = n if not batch_size else int(batch_size)
        ctx = CallContext(training=False, rng=self.graph.rng(seed) if self.graph
                          else np.random.default_rng(seed))
        chunks = []
        with recording(False):
            for start in range(0, max(n, 1), max(step, 1)):
                feed = [Variable(arrays[name][start:start + step]) for name in self.input_names]
                chunks.append([v.data for v in self.forward(feed, ctx)])
        return {name: np.concatenate([c[i] for c in chunks]) if len(chunks) > 1 else chunks[0][i]
                for i, name in enumerate(self.output_names)}

    def check_inputs(self, inputs) -> dict:
        """Arrays keyed by input name, cast to the input dtypes; clear errors otherwise."""
        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                raise InputError(f"model '{self.name}' has inputs {self.input_names}: "
                                 "pass a dict keyed by input name")
            inputs = {self.inputs[0].name: inputs}
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self.input_names]
        if missing or extra:
            raise InputError(f"model '{self.name}' expects inputs {self.input_names}; "
                             f"missing {missing}, unexpected {extra}")
        arrays, batch = {}, None
        for tensor in self.inputs:
            arrays[tensor.name] = as_input_array(tensor, inputs[tensor.name], self.name)
            size = arrays[tensor.name].shape[0]
            if batch is not None and size != batch:
                raise InputError(f"model '{self.name}': inputs have different batch sizes "
                                 f"({batch} and {size} for '{tensor.name}')")
            batch = size
        return arrays

    # -- training (Keras' compile / fit / evaluate / train_on_batch) -------------------
    def compile(self, loss, optimizer="rmsprop", metrics=(), loss_weights=None, **job):
        """Choose loss(es), optimizer and metrics, as in Keras; overrides the spec's job."""
        self._job_overrides = dict(job, loss=loss, optimizer=optimizer, metrics=list(metrics),
                                   **({"loss_weights": loss_weights} if loss_weights else {}))
        self._trainer = None
        return self

    def trainer(self, job: str | None = None):
        """The Trainer that keeps this model's optimizer and loss state between calls."""
        from ..train.job import build_job
        from ..train.trainer import Trainer
        current = getattr(self, "_trainer", None)
        if current is None or (job is not None and current.job_name != job):
            overrides = getattr(self, "_job_overrides", None)
            built = build_job(self.graph, None if overrides else job, self.name, overrides)
            current = self._trainer = Trainer(self.graph, built)
            current.job_name = job
        return current

    def _data(self, x, y) -> dict:
        data = dict(x) if isinstance(x, dict) else {self.input_names[0]: x}
        if y is not None:
            data.update(y if isinstance(y, dict) else {self.output_names[0]: y})
        return data

    def fit(self, x, y=None, job: str | None = None, **kwargs) -> dict:
        """Train on ``x`` (inputs by name) and ``y`` (targets by output name); returns
        the history. Keyword arguments as Keras: epochs, batch_size, validation_split,
        shuffle, plus seed, checkpoint_dir, resume, on_nan, verbose."""
        return self.trainer(job).fit(self._data(x, y), **kwargs)

    def evaluate(self, x, y=None, batch_size: int = 32, job: str | None = None) -> dict:
        return self.trainer(job).evaluate(self._data(x, y), batch_size)

    def train_on_batch(self, x, y=None, job: str | None = None) -> dict:
        trainer = self.trainer(job)
        inputs, targets, _ = trainer.split_data(self._data(x, y))
        return trainer.train_on_batch(inputs, targets)

    def __repr__(self):
        return f"<Model '{self.name}' inputs={self.input_names} outputs={self.output_names}>"


def _activity_config(layer):
    config = getattr(layer, "config", None)
    return config.get("activity_regularizer") if isinstance(config, dict) else None


def shapes_compatible(expected: tuple, got: tuple) -> bool:
    """Equal rank and equal dims wherever both are known (None matches anything)."""
    return len(expected) == len(got) and all(
        a is None or b is None or a == b for a, b in zip(expected, got))


def as_input_array(tensor, value, model_name: str) -> np.ndarray:
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise InputError(f"input '{tensor.name}' of model '{model_name}' is complex; "
                         "graphspec takes real numbers only")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        raise InputError(f"input '{tensor.name}' of model '{model_name}' must be a numeric "
                         f"array, got dtype {array.dtype}")
    got = (None,) + array.shape[1:] if array.ndim else ()
    if not shapes_compatible(tensor.shape, got):
        raise InputError(f"input '{tensor.name}' of model '{model_name}' expects shape "
                         f"{_fmt(tensor.shape)} (batch first), got an array of shape "
                         f"{array.shape}")
    if np.issubdtype(np.dtype(tensor.dtype), np.integer):
        if not np.issubdtype(array.dtype, np.integer):
            if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
                raise InputError(f"input '{tensor.name}' of model '{model_name}' holds "
                                 f"integer indices ({tensor.dtype}), got non-integer values")
        return array.astype(tensor.dtype, copy=False)
    if not np.all(np.isfinite(array)):
        raise InputError(f"input '{tensor.name}' of model '{model_name}' contains NaN or Inf")
    return array.astype(tensor.dtype, copy=False)


def _fmt(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"
