"""Merge: a custom merge of two or more tensors, written as an expression of ``x``.

The inputs are bound as the list ``x`` (also ``inputs``): ``abs(x[0]) + abs(x[1])`` on
``[-1, -2, 3]`` and ``[4, -5, -6]`` gives ``[5, 7, 9]`` (reference item 14). Arguments,
output-shape rules and inference are those of :class:`~.lambda_layer.Lambda`; only the
input count differs.
"""
from __future__ import annotations

from .lambda_layer import Lambda


class Merge(Lambda):
    TYPE = "Merge"
    DOC = "A custom merge of 2+ inputs as an expression of the list x: abs(x[0]) + abs(x[1])."
    INPUTS = (2, None)
