"""Training: one step = forward with a tape, total loss, backward, optimizer update,
then the once-per-step updates of stateful loss variables.

The total loss is ``sum_o w_o * mean(loss_o(y_o, pred_o))`` plus weight and activity
regularizers plus the job's added losses (expressions over any tensor of the model).
Which weights move is decided once per job: a weight is trained only if its layer and
every sub-model that contains it are trainable and none of them is in the job's
``freeze`` list (Keras' AND semantics); frozen weights do not even get gradients.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from .. import ops
from ..autodiff import Variable, backward, recording
from ..errors import GraphspecError, InputError
from ..graph.model import Model
from ..io.files import load_npz, save_npz
from ..layers.base import CallContext
from .losses import reduce_loss
from .metrics import get_metric, reduce_metric
from .progress import ProgressBar
from .regularizers import activity_penalty, weight_regularizers


class TrainingError(GraphspecError):
    """Training cannot go on (NaN loss)."""


class DataError(InputError):
    """Training or evaluation data that does not fit the model; the CLI adds the file."""


def _scalar(value) -> float:
    data = value.data if isinstance(value, Variable) else value
    return float(np.asarray(data, dtype=np.float64).mean())


class Trainer:
    def __init__(self, graph, job):
        self.graph, self.job, self.model = graph, job, job.model
        weights = graph.weights()
        uses = self.model.layer_uses(job.freeze)
        self.params = [(f"{u.layer.name}/{name}", weights[f"{u.layer.name}/{name}"])
                       for u in uses for name in u.trainable_weight_names()]
        self.frozen = frozenset(id(u.layer) for u in uses if not u.trainable)
        self.regularized = weight_regularizers(uses)
        self.state = {name: s.value for name, s in job.state.items()}
        self.history: dict = {}
        self.epoch = 0
        self._metric_fns: dict = {}

    # -- data ----------------------------------------------------------------------------
    def split_data(self, data: dict):
        """Inputs and targets from one mapping keyed by input and output names."""
        try:
            return self._split_data(data)
        except DataError:
            raise
        except InputError as exc:
            raise DataError(str(exc)) from None

    def _split_data(self, data: dict):
        model = self.model
        needed = model.input_names + list(self.job.losses)
        missing = [n for n in needed if n not in data]
        if missing:
            raise DataError(f"training data for model '{model.name}' lacks {missing}; it "
                             f"needs inputs {model.input_names} and targets "
                             f"{list(self.job.losses)} (found {sorted(data)})")
        inputs = model.check_inputs({n: data[n] for n in model.input_names})
        size = next(iter(inputs.values())).shape[0]
        if size == 0:
            raise DataError(f"training data for model '{model.name}' has no samples")
        targets = {}
        for name in self.job.losses:
            target = np.asarray(data[name])
            if target.dtype == object or not np.issubdtype(target.dtype, np.number):
                raise DataError(f"target '{name}' must be numeric, got dtype {target.dtype}")
            if target.shape[:1] != (size,):
                raise DataError(f"target '{name}' has {target.shape[0] if target.ndim else 0} "
                                 f"samples, the inputs have {size}")
            if not np.all(np.isfinite(target)):
                raise DataError(f"target '{name}' contains NaN or Inf")
            targets[name] = target
        return inputs, targets, size

    # -- the objective -------------------------------------------------------------------
    def _objective(self, values, targets, rng, activity=None):
        model, job = self.model, self.job
        logs, total = {}, None

        def add(term, weight=1.0):
            nonlocal total
            term = term if weight == 1.0 else ops.mul(term, weight)
            total = term if total is None else ops.add(total, term)

        for out in model.outputs:
            if out.name not in job.losses:
                continue
            loss = reduce_loss(job.losses[out.name](targets[out.name], values[out.slot]))
            if len(job.losses) > 1:
                logs[f"{out.name}_loss"] = loss
            add(loss, job.loss_weights[out.name])
        for layer, weight, regularizer in self.regularized:
            add(regularizer(layer.weights[weight]))
        for config, outputs in activity or ():
            for output in outputs:
                add(activity_penalty(output, config))
        if job.terms or job.added_losses:   # most jobs have neither: skip the bindings
            self._expression_losses(values, rng, logs, add)
        logs["loss"] = total
        return total, logs

    def _expression_losses(self, values, rng, logs, add):
        """Named terms, then added losses, evaluated over every tensor of the model."""
        model, job = self.model, self.job
        bindings = {t.name: values[t.slot] for t in model.inputs}
        bindings.update({t.name: values[t.slot] for n in model.nodes for t in n.output_tensors})
        bindings.update({k: Variable(np.asarray(v, dtype=self.graph.dtype))
                         for k, v in self.state.items()})
        for name, expression in job.terms.items():
            bindings[name] = expression.evaluate(bindings, rng)
            logs[name] = bindings[name]
        for expression, weight in job.added_losses:
            value = expression.evaluate(bindings, rng)
            if isinstance(value, Variable) and value.data.ndim:
                value = ops.mean(value)
            add(value, weight)

    def _metrics(self, values, targets) -> dict:
        out = {}
        for name, metrics in self.job.metrics.items():
            pred = values[self.model.tensor(name).slot].data
            for metric in metrics:
                key = (name, str(metric))
                if key not in self._metric_fns:
                    self._metric_fns[key] = get_metric(
                        metric, self.job.loss_names.get(name), targets[name].shape, pred.shape)
                fn = self._metric_fns[key]
                label = fn.metric_name if metric in ("accuracy", "acc") else str(metric)
                label = "accuracy" if metric in ("accuracy", "acc") else label
                label = label if len(self.job.losses) == 1 else f"{name}_{label}"
                out[label] = reduce_metric(fn(targets[name], pred))
        return out

    def _update_state(self, logs):
        if not self.job.state:
            return
        bindings = {k: Variable(np.asarray(v, dtype=np.float64)) for k, v in self.state.items()}
        bindings.update({k: Variable(np.asarray(_scalar(logs[k]))) for k in self.job.terms})
        with recording(False):
            new = {name: _scalar(s.update.evaluate(bindings, None))
                   for name, s in self.job.state.items()}
        self.state.update(new)

    # -- steps -------------------------------------------------------------------------
    def _set_requires_grad(self):
        trainable = {key for key, _ in self.params}
        for key, var in self.graph.weights().items():
            var.requires_grad = key in trainable
            var.grad = None

    def train_on_batch(self, inputs: dict, targets: dict, rng=None, on_nan="stop",
                       where="") -> dict:
        """One optimizer step on one batch; returns the batch's loss, metrics and state."""
        rng = rng if rng is not None else self.graph.rng()
        self._set_requires_grad()
        ctx = CallContext(training=True, rng=rng, frozen=self.frozen, activity=[])
        # Overflow shows up as a non-finite loss, reported below with epoch and batch.
        with recording(True), np.errstate(over="ignore", invalid="ignore"):
            feeds = [Variable(inputs[n]) for n in self.model.input_names]
            values = self.model.run(feeds, ctx)
            total, logs = self._objective(values, targets, rng, ctx.activity)
        loss = _scalar(total)
        if not math.isfinite(loss):
            if on_nan == "stop":
                raise TrainingError(f"loss became {loss}{where}; lower the learning rate, "
                                    "check the data, or pass --on-nan skip to skip such "
                                    "batches")
            return {"loss": loss, "skipped": 1.0}
        with np.errstate(over="ignore", invalid="ignore"):
            backward(total)
            self.job.optimizer.apply(self.params)
        for var, value in ctx.state_updates:
            var.data = value
        result = {k: _scalar(v) for k, v in logs.items()}
        result.update(self._metrics(values, targets))
        self._update_state(logs)
        result.update(self.state)
        return result

    def evaluate(self, data: dict, batch_size: int = 32) -> dict:
        """Loss and metrics over ``data`` without updating anything (Keras' evaluate)."""
        inputs, targets, size = self.split_data(data)
        sums, count = {}, 0
        ctx = CallContext(training=False, rng=self.graph.rng(), activity=[])
        with recording(False):
            for start in range(0, size, batch_size):
                sl = slice(start, start + batch_size)
                values = self.model.run([Variable(inputs[n][sl]) for n in self.model.input_names],
                                        ctx)
                batch_targets = {k: v[sl] for k, v in targets.items()}
                _, logs = self._objective(values, batch_targets, ctx.rng, ctx.activity)
                ctx.activity.clear()
                logs = {k: _scalar(v) for k, v in logs.items()}
                logs.update(self._metrics(values, batch_targets))
                n = min(batch_size, size - start)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v * n
                count += n
        return {k: v / max(count, 1) for k, v in sums.items()}

    # -- fit ---------------------------------------------------------------------------
    def fit(self, data: dict, epochs: int | None = None, batch_size: int | None = None,
            validation_split: float | None = None, shuffle: bool | None = None,
            seed: int | None = None, checkpoint_dir=None, resume: bool = False,
            on_nan: str = "stop", verbose: bool = True, stream=None) -> dict:
        """Keras-like fit; returns the history (per-epoch lists of every logged value).

        Each epoch draws its shuffle order and its sampling noise from a generator seeded
        by ``(seed, epoch)``, so a run resumed from an epoch checkpoint reaches the same
        numbers as one that was never interrupted.
        """
        job = self.job
        epochs = int(epochs or job.epochs)
        batch_size = int(batch_size or job.batch_size)
        validation_split = job.validation_split if validation_split is None else validation_split
        shuffle = job.shuffle if shuffle is None else shuffle
        seed = int(np.random.SeedSequence().entropy % (2 ** 31)) if seed is None else seed
        inputs, targets, size = self.split_data(data)
        train_idx, val_idx = _split(size, validation_split)
        if checkpoint_dir and not resume:
            _make_checkpoint_dir(checkpoint_dir)   # fail now, not after the first epoch
        if resume:
            seed = self.restore(checkpoint_dir)
        for epoch in range(self.epoch, epochs):
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(train_idx) if shuffle else train_idx
            bar = ProgressBar(epoch + 1, epochs, math.ceil(len(order) / batch_size),
                              enabled=verbose, stream=stream)
            sums, seen = {}, 0
            for b, start in enumerate(range(0, len(order), batch_size)):
                idx = order[start:start + batch_size]
                logs = self.train_on_batch({k: v[idx] for k, v in inputs.items()},
                                           {k: v[idx] for k, v in targets.items()}, rng,
                                           on_nan, f" at epoch {epoch + 1}, batch {b + 1}")
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
                seen += len(idx)
                epoch_logs = {k: v / seen for k, v in sums.items()}
                epoch_logs.update(self.state)
                bar.update(b + 1, epoch_logs)
            if len(val_idx):
                val = self.evaluate({**{k: v[val_idx] for k, v in inputs.items()},
                                     **{k: v[val_idx] for k, v in targets.items()}}, batch_size)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            bar.finish(epoch_logs)
            for k, v in epoch_logs.items():
                self.history.setdefault(k, []).append(float(v))
            self.epoch = epoch + 1
            if checkpoint_dir:
                self.save_checkpoint(checkpoint_dir, seed)
        return self.history

    # -- checkpoints ---------------------------------------------------------------------
    def state_arrays(self) -> dict:
        return {f"state/{k}": np.asarray(v, dtype=np.float64) for k, v in self.state.items()}

    def save_checkpoint(self, directory, seed: int) -> str:
        _make_checkpoint_dir(directory)
        arrays = {key: var.data for key, var in self.graph.weights().items()}
        arrays.update(self.job.optimizer.state_dict())
        arrays.update(self.state_arrays())
        arrays["trainer/epoch"] = np.asarray(self.epoch)
        arrays["trainer/seed"] = np.asarray(seed)
        arrays["trainer/history"] = np.asarray(json.dumps(self.history))
        path = os.path.join(directory, "checkpoint.npz")
        save_npz(path, arrays)
        return path

    def restore(self, directory) -> int:
        """Load the last checkpoint in ``directory``; returns the run's seed."""
        if not directory:
            raise InputError("--resume needs --checkpoint DIR")
        path = os.path.join(directory, "checkpoint.npz")
        if not os.path.exists(path):
            raise InputError(f"--resume: no checkpoint at {path}")
        arrays = load_npz(path)
        for key in ("trainer/epoch", "trainer/seed", "trainer/history"):
            if key not in arrays:
                raise InputError(f"{path} is not a graphspec checkpoint (no '{key}')")
        self.graph.set_weights(arrays, source=path)
        self.job.optimizer.load_state_dict({k: v for k, v in arrays.items()
                                            if k.startswith("optimizer/")})
        for name in self.state:
            if f"state/{name}" in arrays:
                self.state[name] = float(arrays[f"state/{name}"])
        self.epoch = int(arrays["trainer/epoch"])
        self.history = json.loads(str(arrays["trainer/history"]))
        return int(arrays["trainer/seed"])


def _make_checkpoint_dir(directory):
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot use '{directory}' as a checkpoint directory: "
                         f"{exc.strerror or exc}") from None


def _split(size, validation_split):
    """Keras takes the validation samples from the end, before any shuffling."""
    n_val = int(size * validation_split) if validation_split else 0
    indices = np.arange(size)
    return indices[: size - n_val], indices[size - n_val:]
