"""The values an expression translation passes around: a graph tensor (name, shape with
None for unknown sizes, dtype) or a symbolic number computed in the graph (e.g. the batch
size). Their own module so the expression translator and the function table can both
use them without importing each other."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class T:
    name: str
    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass
class Sym:
    name: str
    dtype: np.dtype
