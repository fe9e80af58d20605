"""Execution and reverse-mode autodiff: the tape engine."""
from .engine import Variable, as_variable, backward, is_recording, recording, result

__all__ = ["Variable", "as_variable", "backward", "is_recording", "recording", "result"]
