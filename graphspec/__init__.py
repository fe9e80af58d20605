"""graphspec: neural-network graphs declared in YAML, compiled to numpy.

Pipeline: ``spec`` (load + validate) -> ``compiler`` -> ``graph`` (layers, nodes,
tensors) -> ``autodiff``/``ops`` (execution) -> ``train`` -> ``cli``.
"""
__version__ = "0.1.0"

from .api import load, loads, validate  # noqa: E402
from .errors import (GraphspecError, InputError, SpecError, SpecErrors,  # noqa: E402
                     TrainingInterrupted)

__all__ = ["load", "loads", "validate", "GraphspecError", "InputError", "SpecError",
           "SpecErrors", "TrainingInterrupted"]
