"""A training job: everything a ``training:`` entry (plus CLI overrides) says, resolved
against one compiled model — losses per output, loss weights, extra terms, stateful
loss variables, frozen layers, optimizer and metrics."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autodiff import Variable, recording
from ..errors import GraphspecError, InputError
from ..expr import ExprError, parse_expression
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

    def __call__(self, y_true, y_pred):
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


def _expr(text, names, where):
    try:
        return parse_expression(text, set(names))
    except ExprError as exc:
        raise TrainingConfigError(f"{where}: {exc}") from None


def build_job(graph, job_name: str | None = None, model_name: str | None = None,
              overrides: dict | None = None) -> TrainingJob:
    """Resolve a ``training:`` entry (or flags alone) into a :class:`TrainingJob`."""
    jobs = graph.training
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if job_name is None and jobs:
        candidates = [n for n, j in jobs.items() if model_name in (None, j["model"])]
        job_name = candidates[0] if candidates else None
    if job_name is not None and job_name not in jobs:
        raise InputError(f"{graph.file} has no training job '{job_name}' "
                         f"(jobs: {', '.join(jobs) or 'none'})")
    config = dict(jobs[job_name]) if job_name else {}
    config.update(overrides)
    model = graph.model(model_name or config.get("model"))
    if "loss" not in config and not config.get("added_losses"):
        raise InputError(f"no loss for model '{model.name}': add a training job to the spec "
                         "or pass --loss NAME")
    # A job may train on added losses alone (BEGAN's discriminator): then no output has
    # a loss and the data holds no targets.
    losses, loss_names = _output_losses(model, config["loss"]) if "loss" in config else ({}, {})
    weights = config.get("loss_weights", {})
    unknown = [n for n in weights if n not in losses]
    if unknown:
        raise TrainingConfigError(f"loss_weights names {unknown}, but model '{model.name}' "
                                  f"has outputs with losses {list(losses)}")
    tensor_names = model.input_names + [t.name for n in model.nodes for t in n.output_tensors]
    state_names = list(config.get("state", {}))
    terms = {}
    for name, text in config.get("terms", {}).items():
        terms[name] = _expr(text, tensor_names + state_names + list(terms), f"term '{name}'")
    scope = tensor_names + state_names + list(terms)
    added = []
    for i, item in enumerate(config.get("added_losses", [])):
        text, weight = (item, 1.0) if isinstance(item, str) else (item["expr"],
                                                                   item.get("weight", 1.0))
        added.append((_expr(text, scope, f"added_losses[{i}]"), float(weight)))
    state = {name: StateVariable(name, float(s["initial"]),
                                 _expr(s["update"], state_names + list(terms),
                                       f"state '{name}' update"))
             for name, s in config.get("state", {}).items()}
    freeze = set(config.get("freeze", []))
    known = set(graph.layers) | set(graph.models)
    if freeze - known:
        raise TrainingConfigError(f"freeze names {sorted(freeze - known)}, which are neither "
                                  "layers nor models of the spec")
    return TrainingJob(
        model=model, losses=losses, loss_names=loss_names,
        loss_weights={n: float(weights.get(n, 1.0)) for n in losses},
        terms=terms, added_losses=added, state=state, freeze=freeze,
        optimizer=get_optimizer(config.get("optimizer", "rmsprop")),
        metrics=_metrics(model, config.get("metrics", []), loss_names),
        epochs=int(config.get("epochs", 1)), batch_size=int(config.get("batch_size", 32)),
        validation_split=float(config.get("validation_split", 0.0)),
        shuffle=bool(config.get("shuffle", True)))


def _one_loss(spec, output):
    if isinstance(spec, dict) and "expr" in spec:
        expression = _expr(spec["expr"], ["y_true", "y_pred"], f"loss of '{output.name}'")
        loss = CustomLoss(expression)
        _check_custom_loss(loss, output)
        return loss, "custom"
    loss = get_loss(spec)
    return loss, getattr(loss, "name", str(spec))


def _check_custom_loss(loss, output):
    """Evaluate on zeros once, so a loss that does not return (batch,) fails at load."""
    shape = (2,) + tuple(1 if d is None else d for d in output.shape[1:])
    with recording(False):
        loss(np.zeros(shape), Variable(np.full(shape, 0.5, np.float32)))


def _output_losses(model, spec):
    is_mapping = isinstance(spec, dict) and "name" not in spec and "expr" not in spec
    if is_mapping:
        unknown = [n for n in spec if n not in model.output_names]
        missing = [n for n in model.output_names if n not in spec]
        if unknown or missing:
            raise TrainingConfigError(
                f"losses are given by output name, but {'unknown ' + str(unknown) if unknown else ''}"
                f"{' and ' if unknown and missing else ''}"
                f"{'missing ' + str(missing) if missing else ''}: model '{model.name}' has "
                f"outputs {model.output_names}")
    losses, names = {}, {}
    for output in model.outputs:
        losses[output.name], names[output.name] = _one_loss(
            spec[output.name] if is_mapping else spec, output)
    return losses, names


def _metrics(model, spec, loss_names):
    per_output = spec if isinstance(spec, dict) else {n: list(spec) for n in loss_names}
    unknown = [n for n in per_output if n not in loss_names]
    if unknown:
        raise TrainingConfigError(f"metrics name outputs {unknown}; model '{model.name}' has "
                                  f"outputs with losses {list(loss_names)}")
    for metrics in per_output.values():   # unknown names fail now, not at the first batch
        for metric in metrics:
            get_metric(metric)
    return {name: list(metrics) for name, metrics in per_output.items()}
