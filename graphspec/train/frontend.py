"""The model users hold: structure (graph/) plus Keras' Trainer methods.

Keras 3 builds its ``Model`` from a ``Functional`` graph and a ``Trainer`` that drives
it. graphspec does the same with the layers the other way round from Keras' files, so
that imports only point down: :class:`graphspec.graph.model.Model` is the structure
(inputs, nodes, outputs, the walk, the node loop) and knows nothing of training; this
module, above it, adds ``predict`` (through the one executor, :mod:`graphspec.runtime`)
and ``compile``/``fit``/``evaluate``/``train_on_batch`` (through a
:class:`~graphspec.train.trainer.Trainer`). The compiler builds models of whatever
class :func:`graphspec.load` hands it, which is :class:`Model` below: no registry, no
method patched in at import time, and ``graph/`` never imports ``train/``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..graph import graph as graph_module
from ..graph import model as model_module
from .job import build_job

# The executor and the Trainer (with the fit loop, checkpoints and data streaming under
# it) are imported by the methods that run a model, not with this module: `graphspec
# validate` builds these classes and never runs one (issue 11: a cold CLI start).
if TYPE_CHECKING:
    from .history import History
    from .trainer import Trainer


class Model(model_module.Model):
    """A compiled model with Keras' ``predict``/``compile``/``fit``/``evaluate``."""

    def predict(self, inputs, batch_size: int | None = None, seed: int | None = None,
                allow_nonfinite: bool = False) -> dict:
        """Outputs keyed by output name, for inputs keyed by input name (a bare array
        for a single-input model). Batches of ``batch_size`` rows run in turn (same
        result, bounded memory). NaN/Inf outputs are an InputError naming the node that
        first produced them, unless ``allow_nonfinite``."""
        from ..runtime import executor
        return executor.predict(self, inputs, batch_size, seed, allow_nonfinite)

    def reset_states(self) -> int:
        """Forget the carried state of every stateful recurrent layer (sub-models and
        wrappers included), as Keras' ``layer.reset_states()`` on each; returns how many."""
        from ..layers.simple_rnn import reset_model_states
        return reset_model_states(self)

    # -- Keras' compile / fit / evaluate / train_on_batch ------------------------------
    def compile(self, loss, optimizer="rmsprop", metrics=(), loss_weights=None, **job):
        """Choose loss(es), optimizer and metrics, as in Keras; overrides the spec's job."""
        self._job_overrides = dict(job, loss=loss, optimizer=optimizer, metrics=list(metrics),
                                   **({"loss_weights": loss_weights} if loss_weights else {}))
        self._trainer = None
        return self

    def trainer(self, job: str | None = None) -> Trainer:
        """The Trainer that keeps this model's optimizer and loss state between calls of
        the same job (``job=None``: the compiled settings, or the spec's first job for
        this model); naming another job starts that job's own trainer."""
        current = getattr(self, "_trainer", None)
        if current is None or current.job_name != job:
            from .trainer import Trainer
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

    def fit(self, x, y=None, job: str | None = None, **kwargs) -> History:
        """Train on ``x`` (inputs by name) and ``y`` (targets by output name); returns a
        :class:`History`. Keyword arguments as Keras: epochs, batch_size,
        validation_split, shuffle, plus seed, checkpoint_dir, resume, on_nan, verbose."""
        from .history import History
        trainer = self.trainer(job)
        logs = trainer.fit(self._data(x, y), **kwargs)
        return History(logs, trainer.last_fit_params)

    def evaluate(self, x, y=None, batch_size: int = 32, job: str | None = None,
                 allow_nonfinite: bool = False) -> dict:
        """Loss and metrics over the data, nothing updated (Keras' evaluate)."""
        return self.trainer(job).evaluate(self._data(x, y), batch_size,
                                          allow_nonfinite=allow_nonfinite)

    def train_on_batch(self, x, y=None, job: str | None = None) -> dict:
        """One optimizer step on one batch (targets only for outputs with a loss)."""
        trainer = self.trainer(job)
        inputs, targets, _ = trainer.split_data(self._data(x, y))
        return trainer.train_on_batch(inputs, targets)


class Graph(graph_module.Graph):
    """A compiled spec whose training jobs can be run."""

    def trainer(self, job: str | None = None, model: str | None = None, **overrides):
        """A Trainer for one of the spec's training jobs (or flags alone, as overrides).

        Alternating training (a GAN's discriminator and generator steps) is two trainers
        over the same weights, called in turn: ``d.train_on_batch(...)``,
        ``g.train_on_batch(...)``.
        """
        from .trainer import Trainer
        return Trainer(self, build_job(self, job, model, overrides))
