"""Each layer a model reaches, once, with its effective trainable flag.

Effective trainable is Keras' AND over the containment: a layer's weights train only
if the layer, every sub-model and wrapper that contains it, and the model itself are
trainable. A layer reached along several paths is frozen if any path freezes it (the
trainer's rule in ``graphspec.train.trainer.trainable_weight_keys``).
"""
from __future__ import annotations

from ..graph.model import Model


# TODO(core walk): replace with graphspec.graph.walk.iter_layers(model) once the core
# refactor lands; this is a private copy of the same AND-over-containment rule.
def effective_layers(model: Model) -> dict:
    """``{layer name: (layer, effectively trainable)}`` in first-reached order."""
    found: dict = {}

    def visit(item, trainable: bool) -> None:
        trainable = trainable and bool(item.trainable)
        if isinstance(item, Model):
            for node in item.nodes:
                visit(node.layer, trainable)
            return
        if item.name in found:
            if trainable or not found[item.name][1]:
                return   # reached before; only a first frozen path changes anything
        found[item.name] = (item, trainable)
        for inner in item.sublayers():
            visit(inner, trainable)
    visit(model, True)
    return found


def param_totals(model: Model) -> dict:
    """Parameter counts of ``model``: total, trainable, non-trainable (each weight once)."""
    trainable = frozen = 0
    for layer, layer_trainable in effective_layers(model).values():
        for spec in layer.weight_shapes.values():
            count = 1
            for dim in spec.shape:
                count *= int(dim)
            if layer_trainable and spec.trainable:
                trainable += count
            else:
                frozen += count
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}
