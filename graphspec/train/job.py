"""A training job: everything a ``training:`` entry (plus CLI overrides) says, resolved
against one compiled model — losses per output, loss weights, extra terms, stateful
loss variables, frozen layers, optimizer and metrics."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from .. import expr   # expr.parse_expression: the parser is imported by the first expression
from ..autodiff import Variable, recording
from ..errors import GraphspecError, InputError
from ..expr import ExprError
from ..graph.model import Model
from .losses import get_loss
from .metrics import get_metric
from .optimizers import get_optimizer


class TrainingConfigError(GraphspecError):
    """A training job that cannot work with its model (names, shapes, expressions)."""


@dataclass
class CustomLoss:
    """A per-sample loss written as an expression of ``y_true`` and ``y_pred``."""
    expression: object
    name: str = "custom"

    def __call__(self, y_true, y_pred, mask=None):
        if mask is not None:
            # One value per sample leaves no positions to mask: ignoring the mask would
            # count the padding that Keras leaves out.
            raise TrainingConfigError(
                f"custom loss '{self.expression.text}' is on an output that carries a mask "
                "(Embedding mask_zero or Masking upstream), and an expression loss cannot "
                "leave masked steps out; use a built-in loss, or end the masked part "
                "before the output (e.g. GlobalAveragePooling1D)")
        value = self.expression.evaluate({"y_true": Variable(np.asarray(y_true, y_pred.dtype))
                                          if not isinstance(y_true, Variable) else y_true,
                                          "y_pred": y_pred}, None)
        if not isinstance(value, Variable) or value.data.ndim != 1 \
                or value.shape[0] != y_pred.shape[0]:
            shape = getattr(value, "shape", type(value).__name__)
            raise TrainingConfigError(
                f"custom loss '{self.expression.text}' must return one value per sample "
                f"(shape (batch,)), got {shape}; reduce the other axes, e.g. "
                "mean(..., axis=[1, 2, 3])")
        return value


@dataclass
class StateVariable:
    """A loss variable updated once per step (BEGAN's k, M_global)."""
    name: str
    value: float
    update: object


@dataclass
class TrainingJob:
    model: Model
    losses: dict                        # output name -> loss callable
    loss_names: dict                    # output name -> display name
    loss_weights: dict
    terms: dict = field(default_factory=dict)          # name -> Expression
    added_losses: list = field(default_factory=list)   # (Expression, weight)
    state: dict = field(default_factory=dict)          # name -> StateVariable
    freeze: set = field(default_factory=set)
    optimizer: object = None
    metrics: dict = field(default_factory=dict)        # output name -> [metric names]
    epochs: int = 1
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    name: str | None = None                            # the spec's job name, if any
    overrides: dict = field(default_factory=dict)      # what the caller set explicitly


class _Problems:
    """Problems found while resolving a job, each with its path under ``training.JOB``.

    ``build_job`` raises the first; ``job_problems`` (for ``graphspec validate``) returns
    them all, so train time and validate time check exactly the same things.
    """

    def __init__(self):
        self.items = []

    def add(self, path, message):
        self.items.append((tuple(path), message))

    def attempt(self, path, fn, *args):
        """``fn(*args)``, or None with the error recorded at ``path``."""
        try:
            return fn(*args)
        except ExprError as exc:
            self.add(path, f"{exc.message} (at character {exc.col + 1} of the expression)")
        except GraphspecError as exc:
            self.add(path, getattr(exc, "message", None) or str(exc))
        return None


def _did_you_mean(word, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _select_config(graph, job_name, model_name, overrides):
    jobs = graph.training
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if job_name is None and jobs:
        candidates = [n for n, j in jobs.items() if model_name in (None, j["model"])]
        job_name = candidates[0] if candidates else None
    if job_name is not None and job_name not in jobs:
        raise InputError(f"{graph.file} has no training job '{job_name}'"
                         f"{_did_you_mean(job_name, jobs)} (jobs: {', '.join(jobs) or 'none'})")
    config = dict(jobs[job_name]) if job_name else {}
    optimizer = overrides.get("optimizer")
    if isinstance(optimizer, dict) and "type" not in optimizer:
        # An override names only what it changes (--learning-rate alone keeps the job's
        # optimizer type and its other hyper-parameters).
        overrides = dict(overrides, optimizer=merge_optimizer(config.get("optimizer"),
                                                              optimizer))
    config.update(overrides)
    return job_name, config


def merge_optimizer(base, changes: dict) -> dict:
    """The optimizer config ``base`` (a name, a mapping, or None for the default) with
    the hyper-parameters in ``changes`` replaced; its type is kept."""
    if base is None:
        base = {"type": "rmsprop"}
    elif isinstance(base, str):
        base = {"type": base}
    return dict(base, **changes)


def _resolve(graph, config, problems: _Problems, model_name=None):
    """Every part of a job, resolved against the compiled model; problems recorded."""
    name = model_name or config.get("model")
    if name not in graph.models:
        problems.add(("model",), f"model '{name}' is not declared"
                                 f"{_did_you_mean(name, graph.models)} (models: "
                                 f"{', '.join(graph.models)})")
        return None
    model = graph.models[name]
    if "loss" not in config and not config.get("added_losses"):
        problems.add((), f"no loss for model '{model.name}': give the job a loss or "
                         "added_losses, or pass --loss NAME")
        return None
    # A job may train on added losses alone (BEGAN's discriminator): then no output has
    # a loss and the data holds no targets.
    losses, loss_names = _output_losses(model, config.get("loss"), problems)
    weights = config.get("loss_weights", {})
    for out in weights:
        if out not in losses:
            problems.add(("loss_weights", out), f"loss weight for '{out}', which is not an "
                                               f"output of model '{model.name}' with a loss"
                                               f"{_did_you_mean(out, losses)}")
    tensors = model.input_names + [t.name for n in model.nodes for t in n.output_tensors]
    states = list(config.get("state", {}))
    terms = {}
    for term, text in config.get("terms", {}).items():
        terms[term] = problems.attempt(("terms", term), expr.parse_expression, text,
                                       set(tensors + states + list(terms)))
    scope = set(tensors + states + list(terms))
    added = []
    for i, item in enumerate(config.get("added_losses", [])):
        text, weight, where = (item, 1.0, ("added_losses", i)) if isinstance(item, str) else \
            (item["expr"], item.get("weight", 1.0), ("added_losses", i, "expr"))
        added.append((problems.attempt(where, expr.parse_expression, text, scope),
                      float(weight)))
    state = {}
    for var, spec in config.get("state", {}).items():
        update = problems.attempt(("state", var, "update"), expr.parse_expression,
                                  spec["update"], set(states + list(terms)))
        state[var] = StateVariable(var, float(spec["initial"]), update)
    freeze = set(config.get("freeze", []))
    for i, frozen in enumerate(config.get("freeze", [])):
        if frozen not in graph.layers and frozen not in graph.models:
            problems.add(("freeze", i), f"'{frozen}' is neither a layer nor a model of the spec"
                                        f"{_did_you_mean(frozen, list(graph.layers) + list(graph.models))}")
    optimizer = problems.attempt(("optimizer",), get_optimizer, config.get("optimizer", "rmsprop"))
    metrics = _metrics(model, config.get("metrics", []), loss_names, problems)
    return TrainingJob(
        model=model, losses=losses, loss_names=loss_names,
        loss_weights={n: float(weights.get(n, 1.0)) for n in losses},
        terms=terms, added_losses=added, state=state, freeze=freeze, optimizer=optimizer,
        metrics=metrics, epochs=int(config.get("epochs", 1)),
        batch_size=int(config.get("batch_size", 32)),
        validation_split=float(config.get("validation_split", 0.0)),
        shuffle=bool(config.get("shuffle", True)))


def build_job(graph, job_name: str | None = None, model_name: str | None = None,
              overrides: dict | None = None) -> TrainingJob:
    """Resolve a ``training:`` entry (or flags alone) into a :class:`TrainingJob`."""
    job_name, config = _select_config(graph, job_name, model_name, overrides)
    problems = _Problems()
    job = _resolve(graph, config, problems, model_name)
    if job is not None:
        job.name = job_name
        job.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if problems.items:
        path, message = problems.items[0]
        more = f" (and {len(problems.items) - 1} more problem(s))" if len(problems.items) > 1 else ""
        given = {k for k, v in (overrides or {}).items() if v is not None}
        if path and path[0] in given:
            # It came from a flag (or compile()), not from the file: name the option.
            raise TrainingConfigError(f"--{str(path[0]).replace('_', '-')}: {message}{more}")
        where = ".".join(str(p) for p in ("training", job_name) + path) if job_name else "job"
        raise TrainingConfigError(f"{graph.file}: {where}: {message}{more}")
    return job


def job_problems(graph) -> list:
    """``(spec path, message)`` for everything wrong in every training job of ``graph``."""
    found = []
    for job_name, config in graph.training.items():
        problems = _Problems()
        _resolve(graph, dict(config), problems)
        found += [(("training", job_name) + path, message) for path, message in problems.items]
    return found


def _one_loss(spec, output, problems, path):
    if isinstance(spec, dict) and "expr" in spec:
        expression = problems.attempt(path + ("expr",), expr.parse_expression, spec["expr"],
                                      {"y_true", "y_pred"})
        if expression is None:
            return None, "custom"
        loss = CustomLoss(expression)
        if problems.attempt(path + ("expr",), _check_custom_loss, loss, output) is None:
            return None, "custom"
        return loss, "custom"
    loss = problems.attempt(path, get_loss, spec)
    return loss, getattr(loss, "name", str(spec))


def _check_custom_loss(loss, output):
    """Evaluate on zeros once, so a loss that does not return (batch,) fails at load."""
    shape = (2,) + tuple(1 if d is None else d for d in output.shape[1:])
    with recording(False):
        loss(np.zeros(shape), Variable(np.full(shape, 0.5, np.float32)))
    return True


def _output_losses(model, spec, problems):
    if spec is None:
        return {}, {}
    is_mapping = isinstance(spec, dict) and "name" not in spec and "expr" not in spec
    if is_mapping:
        for out in spec:
            if out not in model.output_names:
                problems.add(("loss", out), f"loss for '{out}', which is not an output of "
                                            f"model '{model.name}'"
                                            f"{_did_you_mean(out, model.output_names)} "
                                            f"(outputs: {', '.join(model.output_names)})")
        missing = [n for n in model.output_names if n not in spec]
        if missing:
            problems.add(("loss",), f"losses are given by output name, but {missing} of "
                                    f"model '{model.name}' have none")
    losses, names = {}, {}
    for output in model.outputs:
        if is_mapping and output.name not in spec:
            continue
        path = ("loss", output.name) if is_mapping else ("loss",)
        losses[output.name], names[output.name] = _one_loss(
            spec[output.name] if is_mapping else spec, output, problems, path)
    return losses, names


def _metrics(model, spec, loss_names, problems):
    per_output = spec if isinstance(spec, dict) else {n: list(spec) for n in loss_names}
    for out, metrics in per_output.items():
        where = ("metrics", out) if isinstance(spec, dict) else ("metrics",)
        if out not in loss_names:
            problems.add(where, f"metrics for '{out}', which is not an output of model "
                                f"'{model.name}' with a loss{_did_you_mean(out, loss_names)}")
        for i, metric in enumerate(metrics):  # unknown names fail now, not at the first batch
            problems.attempt(where + (i,), get_metric, metric)
    return {name: list(metrics) for name, metrics in per_output.items()}
