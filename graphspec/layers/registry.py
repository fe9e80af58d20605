"""The one list of layer types. The spec schema, validation and the compiler all read
it, so adding a layer means: write its file, add it here, add its test."""
from __future__ import annotations

from .activation import Activation
from .add import Add
from .average import Average
from .concatenate import Concatenate
from .dense import Dense
from .dot import Dot
from .dropout import Dropout
from .flatten import Flatten
from .lambda_layer import Lambda
from .maximum import Maximum
from .merge import Merge
from .minimum import Minimum
from .multiply import Multiply
from .permute import Permute
from .repeat_vector import RepeatVector
from .reshape import Reshape
from .subtract import Subtract
from .time_distributed import TimeDistributed

LAYER_CLASSES = (
    Activation, Add, Average, Concatenate, Dense, Dot, Dropout, Flatten, Lambda, Maximum,
    Merge, Minimum, Multiply, Permute, RepeatVector, Reshape, Subtract, TimeDistributed,
)

REGISTRY = {cls.TYPE: cls for cls in LAYER_CLASSES}
