"""graphspec: neural-network graphs declared in YAML, compiled to numpy.

Pipeline: ``spec`` (load + validate) -> ``compiler`` -> ``graph`` (layers, nodes,
tensors) -> ``autodiff``/``ops`` (execution) -> ``train`` -> ``cli``.
"""
__version__ = "0.1.0"

# The API is imported on first use (PEP 562), not with the package: the `graphspec`
# command imports this package first, and `graphspec --help` must not pay for numpy.
_LAZY = {"load": "api", "loads": "api", "validate": "api", "load_model": "api",
         "GraphspecError": "errors",
         "InputError": "errors", "SpecError": "errors", "SpecErrors": "errors",
         "TrainingInterrupted": "errors",
         "diff_specs": "review.diff", "SpecDiff": "review.diff"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'graphspec' has no attribute '{name}'")
