"""Argument schemas several layers share (activations, initializers, regularizers)."""
from ..initializers import INITIALIZERS
from ..ops.activations import ACTIVATIONS

ACTIVATION = {"enum": sorted(ACTIVATIONS), "default": "linear",
              "description": "Keras activation name applied to the output, spelled as "
                             "Keras spells it (swish = silu, hard_swish = hard_silu; "
                             "hard_sigmoid is Keras 3's relu6(x + 3) / 6; leaky_relu has "
                             "slope 0.2). gelu is the exact GELU, the default of Keras' "
                             "gelu activation (approximate=False); gelu_tanh is its tanh "
                             "approximation (approximate=True)"}
INITIALIZER = {"enum": sorted(INITIALIZERS)}
REGULARIZER = {
    "type": ["object", "null"], "default": None, "additionalProperties": False,
    "properties": {"l1": {"type": "number", "minimum": 0},
                   "l2": {"type": "number", "minimum": 0}},
    "description": "penalty added to the loss: {l1: a} , {l2: b} or both (l1_l2)",
}


def initializer(default: str) -> dict:
    return dict(INITIALIZER, default=default)
