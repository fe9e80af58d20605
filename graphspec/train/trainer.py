"""Training: one step = forward with a tape, total loss, backward, optimizer update,
then the once-per-step updates of stateful loss variables.

The total loss is ``sum_o w_o * mean(loss_o(y_o, pred_o))`` plus weight and activity
regularizers plus the job's added losses (expressions over any tensor of the model).
Which weights move is decided once per job by the model walk
(:func:`graphspec.graph.walk.iter_layers`): a weight is trained only if its layer and
every sub-model that contains it are trainable and none of them is in the job's
``freeze`` list (Keras' AND semantics); frozen weights do not even get gradients.

The model runs through the one executor (:mod:`graphspec.runtime.executor`); the data
is checked once, by :mod:`graphspec.io.arrays`; checkpoints and resuming live in
:mod:`graphspec.train.checkpoint`.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

from .. import ops
from ..autodiff import Variable, backward, recording
from ..errors import GraphspecError, InputError, TrainingInterrupted
from ..io.arrays import check_inputs, check_target
from ..runtime import executor
from . import checkpoint
from . import loop
from .loop import (ArrayRows, DataError, DeferredInterrupt, EpochOrder, EpochSums,
                   StreamedRows, is_streamed, split_counts)
from .losses import reduce_loss
from .metrics import get_metric, reduce_metric
from .progress import ProgressBar
from .regularizers import activity_penalty, weight_regularizers


class TrainingError(GraphspecError):
    """Training cannot go on (NaN loss)."""


def _scalar(value) -> float:
    data = value.data if isinstance(value, Variable) else value
    return float(np.asarray(data, dtype=np.float64).mean())


class Trainer:
    def __init__(self, graph, job):
        self.graph = graph
        self.job_name = job.name
        self.set_job(job)
        self.state = {name: s.value for name, s in job.state.items()}
        self.history: dict = {}
        self.epoch = 0
        self.last_epoch_logs: dict = {}     # the figures of the last epoch this run trained
        self.last_fit_params: dict = {}
        self._warned = False
        self.interrupt = DeferredInterrupt()   # Ctrl-C waits for the step to end
        self._updating = False      # inside a weight update: not a consistent state

    def set_job(self, job) -> None:
        """Use ``job`` (resuming may rebuild the job from the checkpoint's settings)."""
        self.job, self.model = job, job.model
        weights = self.graph.weights()
        uses = self.model.layer_uses(job.freeze)
        self.params = [(f"{u.layer.name}/{name}", weights[f"{u.layer.name}/{name}"])
                       for u in uses for name in u.trainable_weight_names()]
        self.frozen = frozenset(id(u.layer) for u in uses if not u.trainable)
        self.regularized = weight_regularizers(uses)
        self._metric_fns: dict = {}

    # -- data ----------------------------------------------------------------------------
    def split_data(self, data: dict):
        """Inputs and targets from one mapping keyed by input and output names, checked
        (:mod:`graphspec.io.arrays`) and cast; ``(inputs, targets, rows)``."""
        try:
            return self._split_data(data)
        except DataError:
            raise
        except InputError as exc:
            raise DataError(str(exc)) from None

    def _check_names(self, data: dict) -> None:
        model = self.model
        needed = model.input_names + list(self.job.losses)
        missing = [n for n in needed if n not in data]
        if missing:
            raise DataError(f"training data for model '{model.name}' lacks {missing}; it "
                             f"needs inputs {model.input_names} and targets "
                             f"{list(self.job.losses)} (found {sorted(data)})")

    def _split_data(self, data: dict):
        model = self.model
        self._check_names(data)
        if any(is_streamed(data[n]) for n in model.input_names + list(self.job.losses)):
            rows = self.data_rows(data)     # memory-mapped: read (and checked) whole here
            inputs, targets = rows.span(0, rows.size)
            return inputs, targets, rows.size
        inputs = check_inputs(model, {n: data[n] for n in model.input_names})
        size = next(iter(inputs.values())).shape[0]
        if size == 0:
            raise DataError(f"training data for model '{model.name}' has no samples")
        targets = {name: check_target(name, data[name], size, self.graph.dtype)
                   for name in self.job.losses}
        return inputs, targets, size

    def data_rows(self, data: dict):
        """The rows of ``data`` for fit and evaluate: :class:`~.loop.ArrayRows` (arrays
        checked and cast whole, as always) or, when any array is memory-mapped
        (:class:`~graphspec.io.npystream.NpySource`, ``np.memmap``),
        :class:`~.loop.StreamedRows` (headers checked now, each batch as it is read)."""
        self._check_names(data)
        names = self.model.input_names + list(self.job.losses)
        if not any(is_streamed(data[n]) for n in names):
            return ArrayRows(*self.split_data(data))
        try:
            return StreamedRows(self.model, {n: data[n] for n in self.model.input_names},
                                {n: data[n] for n in self.job.losses}, self.graph.dtype)
        except DataError:
            raise
        except InputError as exc:
            raise DataError(str(exc)) from None

    # -- the objective -------------------------------------------------------------------
    def _objective(self, values, targets, rng, activity=None, masks=None):
        model, job = self.model, self.job
        logs, total = {}, None

        def add(term, weight=1.0):
            nonlocal total
            term = term if weight == 1.0 else ops.mul(term, weight)
            total = term if total is None else ops.add(total, term)

        for out in model.outputs:
            if out.name not in job.losses:
                continue
            mask = masks[out.slot] if masks is not None else None
            loss = reduce_loss(job.losses[out.name](targets[out.name], values[out.slot],
                                                    mask=mask))
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

    def _metrics(self, values, targets, masks=None) -> dict:
        out = {}
        for name, metrics in self.job.metrics.items():
            slot = self.model.tensor(name).slot
            pred = values[slot].data
            mask = masks[slot] if masks is not None else None
            for metric in metrics:
                key = (name, str(metric))
                if key not in self._metric_fns:
                    self._metric_fns[key] = get_metric(
                        metric, self.job.loss_names.get(name), targets[name].shape, pred.shape)
                fn = self._metric_fns[key]
                label = fn.metric_name if metric in ("accuracy", "acc") else str(metric)
                label = "accuracy" if metric in ("accuracy", "acc") else label
                label = label if len(self.job.losses) == 1 else f"{name}_{label}"
                out[label] = reduce_metric(fn(targets[name], pred, mask=mask))
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

    def _warn_if_nothing_trains(self):
        if not self.params and not self._warned:
            self._warned = True
            warnings.warn(f"model '{self.model.name}' has no trainable weights in this job "
                          "(all frozen, or none): training changes nothing", stacklevel=3)

    def train_on_batch(self, inputs: dict, targets: dict | None = None, rng=None,
                       on_nan="stop", where="") -> dict:
        """One optimizer step on one batch (Keras' ``train_on_batch``); returns the
        batch's loss, metrics and state. ``targets`` only for outputs with a loss (a
        job trained on added losses alone has none)."""
        checked, checked_targets, _ = self.split_data({**inputs, **(targets or {})})
        self._warn_if_nothing_trains()
        return self._step(checked, checked_targets, rng, on_nan, where)

    def _step(self, inputs: dict, targets: dict, rng=None, on_nan="stop", where="") -> dict:
        self._updating = False
        rng = rng if rng is not None else self.graph.rng()
        self._set_requires_grad()
        ctx = executor.context(self.model, training=True, rng=rng, frozen=self.frozen,
                               collect_activity=True)
        # Overflow shows up as a non-finite loss, reported below with epoch and batch.
        with recording(True), np.errstate(over="ignore", invalid="ignore"):
            values, masks = executor.run(self.model, inputs, ctx, record=True,
                                         with_masks=True)
            total, logs = self._objective(values, targets, rng, ctx.activity, masks)
        loss = _scalar(total)
        if not math.isfinite(loss):
            if on_nan == "stop":
                raise TrainingError(f"loss became {loss}{where}; lower the learning rate, "
                                    "check the data, or pass --on-nan skip to skip such "
                                    "batches")
            return {"loss": loss, "skipped": 1.0}
        self._updating = True       # an interrupt from here on leaves a half-done step
        with np.errstate(over="ignore", invalid="ignore"):
            backward(total)
            self.job.optimizer.apply(self.params)
        for var, value in ctx.state_updates:
            var.data = value
        result = {k: _scalar(v) for k, v in logs.items()}
        result.update(self._metrics(values, targets, masks))
        self._update_state(logs)
        self._updating = False
        result.update(self.state)
        return result

    def evaluate(self, data: dict, batch_size: int = 32, allow_nonfinite: bool = False) -> dict:
        """Loss and metrics over ``data`` without updating anything (Keras' evaluate).
        NaN/Inf model outputs are an error naming the node that first produced them,
        unless ``allow_nonfinite``."""
        rows = self.data_rows(data)
        return self._evaluate(rows, 0, rows.size, batch_size, allow_nonfinite)

    def _evaluate(self, data, start: int, stop: int, batch_size: int,
                  allow_nonfinite: bool) -> dict:
        """Rows ``start:stop`` of ``data`` (ArrayRows or StreamedRows), in batches."""
        sums, count = {}, 0
        ctx = executor.context(self.model, collect_activity=True)
        for rows in executor.batch_rows(stop - start, int(batch_size)):
            inputs, batch_targets = data.span(start + rows.start, start + rows.stop)
            values, masks = executor.run(self.model, inputs, ctx, with_masks=True)
            if not allow_nonfinite:
                executor.check_finite_outputs(
                    self.model, values,
                    f" (rows {start + rows.start}..{start + rows.stop - 1})")
            with recording(False):
                _, logs = self._objective(values, batch_targets, ctx.rng, ctx.activity,
                                          masks)
            ctx.activity.clear()
            logs = {k: _scalar(v) for k, v in logs.items()}
            logs.update(self._metrics(values, batch_targets, masks))
            n = rows.stop - rows.start
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
        by ``(seed, epoch)``, so a run resumed from a checkpoint reaches the same numbers
        as one that was never interrupted. With ``checkpoint_dir`` a checkpoint holding
        the whole run configuration is written after every epoch, and Ctrl-C (or any
        KeyboardInterrupt between steps) writes one that records the position inside
        the epoch, then raises :class:`~graphspec.errors.TrainingInterrupted`.
        ``resume`` continues from it: settings not given now are the checkpoint's, a
        conflicting one is refused, a new learning rate is applied (and said).

        ``data`` may hold memory-mapped arrays (:class:`~graphspec.io.npystream.NpySource`
        from ``open_npy``/``open_npy_dir``, or ``np.memmap``): they are streamed, a batch
        of rows read and checked at a time, so memory is bounded by the batch, not the
        data. While the training rows fit one shuffle block
        (:func:`~.loop.shuffle_block_rows`: 2**24 values over all arrays, a whole number
        of batches) an epoch's order is the in-memory one and the numbers are identical
        to training on the same arrays in memory; with more rows, an epoch permutes the
        blocks, then the rows inside each block (:class:`~.loop.EpochOrder`), still from
        ``(seed, epoch)`` alone, so ``resume`` reaches the same weights.
        """
        rows = self.data_rows(data)
        given = {"epochs": epochs, "batch_size": batch_size,
                 "validation_split": validation_split, "shuffle": shuffle, "seed": seed}
        position = None
        if resume:
            settings, position = checkpoint.resume(self, checkpoint_dir, given,
                                                   rows.fingerprint(), stream)
        else:
            settings = self._settings(given)
            if rows.streamed:
                settings["shuffle_block_rows"] = loop.shuffle_block_rows(
                    rows.values_per_row(), settings["batch_size"])
            if checkpoint_dir:
                checkpoint.make_dir(checkpoint_dir)   # fail now, not after the first epoch
        run = checkpoint.run_config(self, settings, rows.fingerprint()) \
            if checkpoint_dir else None
        self._warn_if_nothing_trains()
        with self.interrupt.deferred(bool(checkpoint_dir)):
            self._epochs(rows, settings, position, run, checkpoint_dir, on_nan, verbose,
                         stream)
        return self.history

    def _settings(self, given: dict) -> dict:
        job = self.job
        seed = given["seed"]
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2 ** 31))
        return {"epochs": int(given["epochs"] or job.epochs),
                "batch_size": int(given["batch_size"] or job.batch_size),
                "validation_split": float(job.validation_split
                                          if given["validation_split"] is None
                                          else given["validation_split"]),
                "shuffle": bool(job.shuffle if given["shuffle"] is None else given["shuffle"]),
                "seed": int(seed)}

    def _epochs(self, data, settings, position, run, checkpoint_dir, on_nan, verbose,
                stream):
        batch_size, seed = settings["batch_size"], settings["seed"]
        n_train, n_val = split_counts(data.size, settings["validation_split"])
        executor.check_stateful_batches(self.model, n_train, batch_size)
        steps = math.ceil(n_train / batch_size)
        self.last_fit_params = {"epochs": settings["epochs"], "batch_size": batch_size,
                                "steps": steps}
        for epoch in range(self.epoch, settings["epochs"]):
            rng = np.random.default_rng([seed, epoch])
            order = EpochOrder(rng, n_train, batch_size, settings["shuffle"],
                               settings.get("shuffle_block_rows"), (seed, epoch))
            sums, first = EpochSums(), 0
            if position is not None and position["epoch"] == epoch:
                sums, first = EpochSums(**position["sums"]), position["batch"]
                checkpoint.set_rng_state(rng, position["rng"])
            bar = ProgressBar(epoch + 1, settings["epochs"], steps, enabled=verbose,
                              stream=stream)
            for b in range(first, steps):
                idx = order.batch(b)
                before = rng.bit_generator.state
                try:
                    self.interrupt.raise_if_pending()
                    logs = self._step(*data.take(idx), rng, on_nan,
                                      f" at epoch {epoch + 1}, batch {b + 1}")
                except KeyboardInterrupt:
                    where = {"epoch": epoch, "batch": b, "sums": sums.as_dict(),
                             "rng": before}
                    self._interrupted(checkpoint_dir, run, where)
                sums.add(logs, len(idx))
                bar.update(b + 1, sums.logs(self.state, on_nan == "skip"))
            epoch_logs = sums.logs(self.state, on_nan == "skip")
            if n_val:
                val = self._evaluate(data, n_train, data.size, batch_size,
                                     allow_nonfinite=True)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            bar.finish(epoch_logs)
            for k, v in epoch_logs.items():
                self.history.setdefault(k, []).append(float(v))
            self.epoch = epoch + 1
            self.last_epoch_logs = epoch_logs
            if checkpoint_dir:
                path = checkpoint.save(self, checkpoint_dir, run, None)
                if self.interrupt.take() and self.epoch < settings["epochs"]:
                    raise TrainingInterrupted(path)   # Ctrl-C during validation or save

    def _interrupted(self, checkpoint_dir, run, where):
        """KeyboardInterrupt inside fit: save where we are (if we can), then say so."""
        self.interrupt.take()
        if not checkpoint_dir:
            raise KeyboardInterrupt
        if self._updating:
            # Interrupted inside a weight update: the weights are half-updated, so the
            # position cannot be saved; the last epoch's checkpoint (if any) stands.
            self._updating = False
            last = checkpoint.path_in(checkpoint_dir)
            raise TrainingInterrupted(last if os.path.exists(last) else None,
                                      mid_step=True) from None
        path = checkpoint.save(self, checkpoint_dir, run, where)
        raise TrainingInterrupted(path) from None

    # -- checkpoints ---------------------------------------------------------------------
    def state_arrays(self) -> dict:
        return {f"state/{k}": np.asarray(v, dtype=np.float64) for k, v in self.state.items()}

    def save_checkpoint(self, directory, seed: int) -> str:
        """A checkpoint at an epoch boundary (the run settings of the last fit)."""
        settings = dict(self._settings({"epochs": None, "batch_size": None,
                                        "validation_split": None, "shuffle": None,
                                        "seed": seed}))
        return checkpoint.save(self, directory, checkpoint.run_config(self, settings, {}),
                               None)
