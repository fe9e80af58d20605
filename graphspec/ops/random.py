"""Random sampling: constants for the tape (reparameterise to get gradients through)."""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable


def random_normal(shape, rng: np.random.Generator, mean=0.0, stddev=1.0,
                  dtype=np.float32) -> Variable:
    shape = tuple(int(s) for s in shape)
    return Variable((rng.standard_normal(shape) * stddev + mean).astype(dtype))


def random_uniform(shape, rng: np.random.Generator, low=0.0, high=1.0,
                   dtype=np.float32) -> Variable:
    shape = tuple(int(s) for s in shape)
    return Variable(rng.uniform(low, high, shape).astype(dtype))
