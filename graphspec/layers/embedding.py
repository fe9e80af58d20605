"""Embedding: integer indices -> rows of a trainable ``(input_dim, output_dim)`` table.

Input ``(batch, ...)`` of integer indices (any integer dtype, or floats holding
integers); output ``(batch, ..., output_dim)``. The indices get no gradient; the table's
gradient is the scatter-add of the output gradient rows into the rows they came from,
computed as one sparse-times-dense product (several times faster than ``np.add.at``).

With ``mask_zero`` index 0 is padding: it is still embedded (its row gets gradients,
as in Keras), and the output carries the mask ``indices != 0`` to the layers after it.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import Variable, result
from ..errors import InputError, ShapeError
from .base import POSITIVE_INT, Layer, WeightSpec, single_shape
from .common_args import REGULARIZER, initializer


class EmbeddingIndexError(InputError, ValueError):
    """An index outside ``[0, input_dim)``, or a non-integer index."""


def embedding_lookup(table, indices, layer_name: str = "embedding") -> Variable:
    """``table[indices]`` with a gradient for ``table`` only (fused lookup op)."""
    idx = np.asarray(indices.data if isinstance(indices, Variable) else indices)
    rows, dim = table.data.shape
    if not np.issubdtype(idx.dtype, np.integer):
        if idx.dtype == bool or not np.issubdtype(idx.dtype, np.number):
            raise EmbeddingIndexError(f"Embedding layer '{layer_name}' needs integer "
                                      f"indices, got dtype {idx.dtype}")
        if idx.size and not (np.all(np.isfinite(idx)) and np.all(idx == np.round(idx))):
            raise EmbeddingIndexError(f"Embedding layer '{layer_name}' needs integer "
                                      "indices, got non-integer values")
    if idx.size:
        # The range check runs on the values as given: casting first would turn 1e20
        # into -2**63 (and an int64 2**32+5 read as int32 into 5).
        low, high = idx.min(), idx.max()
        if low < 0 or high >= rows:
            bad = low if low < 0 else high
            raise EmbeddingIndexError(
                f"Embedding layer '{layer_name}': index {str(bad)} is out of range; indices "
                f"must be in [0, {rows - 1}] (input_dim={rows})")
    if not np.issubdtype(idx.dtype, np.integer):
        idx = idx.astype(np.int64)
    out = table.data[idx]

    def backward(g):
        flat_idx = idx.reshape(-1)
        n = flat_idx.size
        from scipy import sparse   # here, not at import: it costs every CLI start ~0.1 s
        scatter = sparse.csr_matrix((np.ones(n, dtype=g.dtype), (flat_idx, np.arange(n))),
                                    shape=(rows, n))
        return (np.asarray(scatter @ g.reshape(n, dim)),)
    return result(out, (table,), backward)


class Embedding(Layer):
    TYPE = "Embedding"
    DOC = "Turns integer indices in [0, input_dim) into dense vectors of size output_dim."
    ARGS = {
        "input_dim": dict(POSITIVE_INT, description="vocabulary size: largest index + 1"),
        "output_dim": dict(POSITIVE_INT, description="size of each embedding vector"),
        "embeddings_initializer": initializer("random_uniform"),
        "embeddings_regularizer": REGULARIZER,
        "activity_regularizer": REGULARIZER,
        "mask_zero": {"type": "boolean", "default": False,
                      "description": "index 0 is padding: the output carries the mask "
                                     "indices != 0 (RNNs skip those steps, pooling and "
                                     "attention ignore them)"},
    }
    REQUIRED = ("input_dim", "output_dim")
    REGULARIZED_WEIGHTS = {"embeddings_regularizer": "embeddings"}

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if len(shape) < 1:
            raise ShapeError(f"Embedding layer '{self.name}' needs a batch axis, "
                             f"got input shape {shape}")
        return [shape + (self.output_dim,)]

    def weight_specs(self, input_shapes):
        return [WeightSpec("embeddings", (self.input_dim, self.output_dim),
                           self.embeddings_initializer)]

    def index_limit(self, input_index):
        return self.input_dim, f"input_dim={self.input_dim} of Embedding '{self.name}'"

    def makes_mask(self) -> bool:
        return bool(self.mask_zero)

    def mask_sources(self, sources, n_outputs):
        return [self.name if self.mask_zero else None]

    def compute_mask(self, inputs, masks):
        if not self.mask_zero:
            return [None]
        indices = inputs[0].data if isinstance(inputs[0], Variable) else inputs[0]
        return [np.asarray(indices) != 0]

    def forward(self, inputs, ctx):
        return [embedding_lookup(self.weights["embeddings"], inputs[0], self.name)]
