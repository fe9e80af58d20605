"""Symbolic tensors and nodes: the graph a spec compiles to (Keras' Node concept).

A :class:`Node` is one *call event*: a layer (or a model used as a layer) applied to
some input tensors, producing output tensors. A layer called three times has three
inbound nodes, numbered in call order; that is how weight sharing and Keras'
node-indexed accessors (``output_at(i)``) fall out without special cases.

Every :class:`SymbolicTensor` carries its history ``(layer, node_index, tensor_index)``
(``None`` for a model input): walking histories back recovers the whole graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class History:
    layer: object
    node_index: int
    tensor_index: int


@dataclass(eq=False)
class SymbolicTensor:
    """A tensor of the compiled graph: its name in the spec, shape (batch = None), dtype."""
    name: str
    shape: tuple
    dtype: str = "float32"
    history: History | None = None
    slot: int = -1        # index into a model run's value list, set by Model
    # The layer whose mask this tensor carries (Embedding mask_zero, Masking), passed on
    # by the layers between; None: no mask. Set by the compiler.
    mask_source: str | None = None

    def __repr__(self):
        return f"<tensor '{self.name}' shape={self.shape} dtype={self.dtype}>"


@dataclass(eq=False)
class Node:
    layer: object                     # a Layer, or a Model called as a layer
    node_index: int
    model: str                        # the model whose calls created this node
    input_tensors: list
    output_tensors: list = field(default_factory=list)

    @property
    def input_shapes(self):
        return [t.shape for t in self.input_tensors]

    @property
    def output_shapes(self):
        return [t.shape for t in self.output_tensors]

    def describe(self) -> dict:
        """The record ``graphspec inspect-nodes`` prints (batch axis as None)."""
        return {
            "layer": self.layer.name,
            "node_index": self.node_index,
            "model": self.model,
            "inbound": [t.name for t in self.input_tensors],
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
            "output_masks": [t.mask_source for t in self.output_tensors],
        }
