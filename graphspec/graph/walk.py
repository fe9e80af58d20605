"""The one walk over the layers of a model.

A model's weights live in its layers, and a layer can be reached three ways: called by
the model, called by a sub-model the model calls (a model is a layer), or wrapped by
another layer (Bidirectional, TimeDistributed). :func:`iter_layers` follows all three
and yields each layer instance ONCE, in first-call order, with its *effective*
trainable flag: Keras' rule that a layer is trained only if it, and every model and
wrapper that contains it, is trainable and none of them is frozen by the job. A layer
reached along several paths (a layer shared by a frozen sub-model and the outer model)
is trainable only if it is trainable along every path, as in Keras, where freezing a
sub-model sets ``trainable = False`` on each of its layers.

Everything that asks "which layers, which weights, trained or not" reads this walk:
``Model.layers``/``param_count``, the summary, the trainer's weight list and its
regularizers, and the compiler. A second copy of it is how counts and training used
to disagree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class LayerUse:
    """One layer instance of a model: the layer, whether a job on the model trains it,
    and the names of the models and wrappers on the path where it was first reached
    (outermost first; the root model's name included)."""
    layer: object
    trainable: bool
    path: tuple

    def param_count(self) -> tuple:
        """(trained, not trained) element counts of this layer's own weights."""
        trained = frozen = 0
        for spec in self.layer.weight_shapes.values():
            n = math.prod(spec.shape)
            if spec.trainable and self.trainable:
                trained += n
            else:
                frozen += n
        return trained, frozen

    def trainable_weight_names(self) -> list:
        """The weights an optimizer updates: trainable weights of a trained layer."""
        if not self.trainable:
            return []
        return [name for name, spec in self.layer.weight_shapes.items() if spec.trainable]


def is_model(item) -> bool:
    """A model used as a layer (duck-typed: graph.model imports this module)."""
    return getattr(type(item), "TYPE", None) == "Model"


def iter_layers(root, freeze=()) -> Iterator[LayerUse]:
    """Each layer under ``root`` (a model, or a layer and what it wraps) once, models
    expanded, with its effective trainable flag under the names in ``freeze``."""
    freeze = frozenset(freeze)
    order: list = []          # first-reach order of layer ids
    uses: dict = {}           # id -> [layer, trainable along every path so far, path]
    expanded = set()          # (id, flag): a sub-model called twice is walked once
    stack = [(root, True, ())]
    # Depth-first, children in call order: pushed reversed onto the stack.
    while stack:
        item, trainable, path = stack.pop()
        trainable = trainable and bool(item.trainable) and item.name not in freeze
        if (id(item), trainable) in expanded:
            continue
        expanded.add((id(item), trainable))
        if is_model(item):
            inner_path = path + (item.name,)
            children = [node.layer for node in item.nodes]
        else:
            entry = uses.get(id(item))
            if entry is None:
                uses[id(item)] = [item, trainable, path]
                order.append(id(item))
            else:
                entry[1] = entry[1] and trainable
            inner_path = path + (item.name,)
            children = item.sublayers()
        stack.extend((child, trainable, inner_path) for child in reversed(children))
    for key in order:
        layer, trainable, path = uses[key]
        yield LayerUse(layer, trainable, path)


def param_count(root, freeze=()) -> tuple:
    """(trainable, non-trainable) weight elements of ``root`` as a job would train it."""
    trained = frozen = 0
    for use in iter_layers(root, freeze):
        t, n = use.param_count()
        trained, frozen = trained + t, frozen + n
    return trained, frozen


def trainable_weight_keys(root, freeze=()) -> list:
    """``layer/weight`` keys a job on ``root`` updates, in walk order."""
    return [f"{use.layer.name}/{name}" for use in iter_layers(root, freeze)
            for name in use.trainable_weight_names()]
