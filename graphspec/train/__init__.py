"""Training: losses, optimizers, metrics and regularizers (the fit loop builds on these)."""
from .losses import LOSSES, Loss, get_loss, reduce_loss
from .metrics import METRICS, MeanMetric, get_metric, reduce_metric
from .optimizers import OPTIMIZER_SCHEMA, OPTIMIZERS, Optimizer, get_optimizer
from .regularizers import Regularizer, activity_penalty, get_regularizer, penalty

__all__ = ["LOSSES", "METRICS", "OPTIMIZERS", "OPTIMIZER_SCHEMA", "Loss", "MeanMetric",
           "Optimizer", "Regularizer", "activity_penalty", "get_loss", "get_metric",
           "get_optimizer", "get_regularizer", "penalty", "reduce_loss", "reduce_metric"]
