"""Training: losses, optimizers, metrics and regularizers (the fit loop builds on these).

The names below come from their modules on first use (PEP 562), so importing one module
of this package (``graphspec.train.job``, which ``graphspec validate`` runs) does not
import the others."""
import importlib

_LAZY = {"LOSSES": "losses", "Loss": "losses", "get_loss": "losses", "reduce_loss": "losses",
         "METRICS": "metrics", "MeanMetric": "metrics", "get_metric": "metrics",
         "reduce_metric": "metrics",
         "OPTIMIZER_SCHEMA": "optimizers", "OPTIMIZERS": "optimizers",
         "Optimizer": "optimizers", "get_optimizer": "optimizers",
         "Regularizer": "regularizers", "activity_penalty": "regularizers",
         "get_regularizer": "regularizers", "penalty": "regularizers"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
