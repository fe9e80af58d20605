"""Errors a user sees: one line, located in the spec, never a traceback."""
from __future__ import annotations


class GraphspecError(Exception):
    """Base class; the CLI prints ``str(error)`` and exits non-zero."""


class ShapeError(GraphspecError):
    """Raised by a layer's shape inference; the compiler adds the spec location."""


class SpecError(GraphspecError):
    """A problem at a place in a spec file: ``FILE:LINE:COL: spec.path: message``."""

    def __init__(self, message: str, file: str = "<spec>", line: int = 0, col: int = 0,
                 path: str = ""):
        self.message, self.file, self.line, self.col, self.path = message, file, line, col, path
        super().__init__(self.format())

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col, "path": self.path,
                "message": self.message}


class SpecErrors(GraphspecError):
    """Every error found in one or more files, reported together."""

    def __init__(self, errors: list):
        self.errors = list(errors)
        super().__init__("\n".join(e.format() for e in self.errors))


class InputError(GraphspecError):
    """A data, weights or input array that does not fit the model (names, shapes, dtypes)."""


class TrainingInterrupted(GraphspecError):
    """Training stopped by Ctrl-C (KeyboardInterrupt) with a checkpoint to resume from.

    ``path`` is the checkpoint file; ``mid_step`` is True when the interrupt arrived
    inside a weight update, so the position could not be saved and ``path`` holds the
    last epoch's checkpoint (if any) instead. The CLI exits 130 with this message.
    """

    def __init__(self, path, mid_step: bool = False):
        self.path, self.mid_step = path, mid_step
        if mid_step and path is None:
            message = ("training interrupted inside a weight update, before the first "
                       "epoch's checkpoint: nothing to resume from")
        elif mid_step:
            message = (f"training interrupted inside a weight update; resume from the last "
                       f"epoch checkpoint {path} with --resume")
        else:
            message = (f"training interrupted; the checkpoint {path} records the position "
                       "in the epoch: continue with --resume")
        super().__init__(message)
