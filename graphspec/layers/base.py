"""The layer contract: what one file in ``graphspec/layers/`` provides.

A *layer instance* is declared once in a spec and *called* on tensors any number of
times. Each call is a :class:`~graphspec.graph.node.Node`; all nodes of one instance use
the same weights. A layer class declares:

- ``ARGS``: its arguments as JSON-schema fragments (with ``default`` where optional).
  The spec schema is generated from these, so the spec and the code cannot disagree.
- ``REQUIRED``: the arguments with no default.
- ``INPUTS``: how many input tensors one call takes: an int, or ``(min, max)`` with
  ``max=None`` for "any number" (merge layers).
- ``compute_output_shapes(input_shapes)``: shapes with ``None`` for the batch axis.
- ``weight_specs(input_shapes)``: the weights a call on those shapes needs.
- ``forward(inputs, ctx)``: differentiable numpy computation built from
  ``graphspec.ops`` (or a fused op whose backward is written beside it in the file).

Masks (Keras' convention: a boolean array, True = a step to use, shaped like the
tensor without its last axis, e.g. ``(batch, steps)`` for ``(batch, steps, features)``)
are made by ``Embedding(mask_zero)`` and ``Masking`` and travel beside the values:

- ``SUPPORTS_MASKING``: Keras' flag. True: a mask on the first input passes to the first
  output (Keras' default ``compute_mask``). False: the layer drops a mask it is given,
  as Keras does, and the compiler says so in a located warning.
- ``USES_MASK``: ``forward_masked(inputs, masks, ctx)`` is called instead of ``forward``
  whenever an input carries a mask (RNNs skip masked steps, pooling averages unmasked
  steps, attention masks keys).
- ``makes_mask()``: True for a layer that creates a mask from its values.
- ``mask_sources(sources, n_outputs)`` (compile time: for each output, the name of the
  layer whose mask it carries, or None) and ``compute_mask(inputs, masks)`` (run time:
  the output masks) must agree; a layer overriding one overrides the other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError

# A cap on any one dimension or unit count: a spec asking for more is refused before
# anything is allocated (a Dense of 10**12 units must not reach numpy).
MAX_DIM = 1 << 24
# A cap on the elements of one weight, for the same reason (~4 GB of float32 at most).
MAX_WEIGHT_ELEMENTS = 1 << 30

POSITIVE_INT = {"type": "integer", "minimum": 1, "maximum": MAX_DIM}
NON_NEGATIVE_INT = {"type": "integer", "minimum": 0, "maximum": MAX_DIM}


@dataclass
class WeightSpec:
    name: str
    shape: tuple
    initializer: str = "glorot_uniform"
    trainable: bool = True


@dataclass
class CallContext:
    """What a forward pass needs besides its inputs."""
    training: bool = False
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    # Updates to non-trainable state (BatchNormalization moving averages), applied by
    # the trainer after the step: list of (Variable, new value array).
    state_updates: list = field(default_factory=list)
    # ids of layers frozen for this training job (own flag, a frozen containing model,
    # or the job's freeze list): BatchNormalization runs them in inference mode.
    frozen: frozenset = frozenset()
    # When a list: the executor appends ``(activity_regularizer config, outputs)`` for
    # every call of a layer that has one, sub-models included (Keras' ``add_loss``
    # during the call); the trainer turns them into penalties. None: not collected.
    activity: list | None = None


# Keras' weight-regularizer arguments and the weight each one penalises. A layer whose
# weights are named otherwise declares its own ``REGULARIZED_WEIGHTS`` table.
REGULARIZED_WEIGHTS = {
    "kernel_regularizer": "kernel",
    "bias_regularizer": "bias",
    "recurrent_regularizer": "recurrent_kernel",     # Keras' name for the weight
    "embeddings_regularizer": "embeddings",
    "gamma_regularizer": "gamma",
    "beta_regularizer": "beta",
}


class Layer:
    TYPE: str = ""
    ARGS: dict = {}
    REQUIRED: tuple = ()
    INPUTS = 1
    DOC = ""
    REGULARIZED_WEIGHTS = REGULARIZED_WEIGHTS
    SUPPORTS_MASKING = False
    USES_MASK = False

    def __init__(self, name: str, config: dict, trainable: bool = True):
        self.name = name
        self.config = self.with_defaults(config)
        self.trainable = trainable
        self.weights: dict = {}          # name -> Variable, filled by Graph.initialize
        self.weight_shapes: dict = {}    # name -> WeightSpec, fixed by the first call
        self.inbound_nodes: list = []    # one Node per call, in call order

    # -- configuration --------------------------------------------------------------
    @classmethod
    def with_defaults(cls, config: dict) -> dict:
        full = {k: s["default"] for k, s in cls.ARGS.items() if "default" in s}
        full.update(config)
        return full

    def __getattr__(self, item):
        # Arguments read as attributes (self.units) keep forward() close to the math.
        config = self.__dict__.get("config")
        if config is not None and item in config:
            return config[item]
        raise AttributeError(f"{type(self).__name__} has no attribute {item!r}")

    # -- the contract ------------------------------------------------------------------
    def compute_output_shapes(self, input_shapes: list) -> list:
        raise NotImplementedError

    def weight_specs(self, input_shapes: list) -> list:
        return []

    def forward(self, inputs: list, ctx: CallContext) -> list:
        raise NotImplementedError

    # -- masking (see the module docstring) --------------------------------------------
    def makes_mask(self) -> bool:
        """True if this layer creates a mask from its input values."""
        return False

    def mask_sources(self, sources: list, n_outputs: int) -> list:
        """Compile time: per output, the name of the layer whose mask it carries (None:
        no mask), given the same for each input."""
        first = sources[0] if sources and self.SUPPORTS_MASKING else None
        return [first] + [None] * (n_outputs - 1)

    def compute_mask(self, inputs: list, masks: list) -> list:
        """Run time: per output, its mask (a boolean array) or None; a shorter list
        leaves the remaining outputs unmasked."""
        return [masks[0] if masks and self.SUPPORTS_MASKING else None]

    def forward_masked(self, inputs: list, masks: list, ctx: CallContext) -> list:
        """``forward`` with the input masks (None where an input has none)."""
        return self.forward(inputs, ctx)

    def call_masked(self, inputs: list, masks: list, ctx: CallContext) -> tuple:
        """``(outputs, output masks)`` of one call whose inputs may carry masks."""
        outputs = self.forward_masked(inputs, masks, ctx) if self.USES_MASK \
            else self.forward(inputs, ctx)
        if not self.SUPPORTS_MASKING and not self.makes_mask():
            return outputs, [None] * len(outputs)
        out_masks = self.compute_mask(inputs, masks)
        return outputs, list(out_masks) + [None] * (len(outputs) - len(out_masks))

    def sublayers(self) -> list:
        """Layers whose weights this layer uses (wrappers and sub-models)."""
        return []

    def index_limit(self, input_index: int):
        """``(rows, reason)`` if input ``input_index`` holds indices into a table of
        ``rows`` rows (an Embedding), so integer inputs are range-checked before the
        cast; None for every other layer."""
        return None

    # -- checks every layer shares -----------------------------------------------------
    def check_input_count(self, count: int) -> None:
        low, high = (self.INPUTS, self.INPUTS) if isinstance(self.INPUTS, int) else self.INPUTS
        if count < low or (high is not None and count > high):
            expected = str(low) if low == high else f"at least {low}" if high is None \
                else f"{low} to {high}"
            raise ShapeError(f"{self.TYPE} layer '{self.name}' takes {expected} input "
                             f"tensor(s), got {count}")

    def register_weights(self, input_shapes: list) -> None:
        """Fix weight shapes at the first call; later calls must fit the same weights."""
        specs = {s.name: s for s in self.weight_specs(input_shapes)}
        for spec in specs.values():
            if math.prod(spec.shape) > MAX_WEIGHT_ELEMENTS:
                raise ShapeError(f"weight '{self.name}/{spec.name}' of shape {spec.shape} "
                                 f"is larger than the {MAX_WEIGHT_ELEMENTS} element limit")
        if not self.weight_shapes:
            self.weight_shapes = specs
            return
        for name, spec in specs.items():
            built = self.weight_shapes.get(name)
            if built is None or built.shape != spec.shape:
                had = built.shape if built else None
                raise ShapeError(
                    f"layer '{self.name}' was built with weight '{name}' of shape {had} "
                    f"at its first call, but this call needs {spec.shape}: a shared layer "
                    "must be called on inputs with the same feature shape")

    def weight_regularizers(self) -> dict:
        """``{weight name: (argument, regularizer config)}`` for every weight-regularizer
        argument that is set. An argument naming a weight this layer does not have
        (``bias_regularizer`` with ``use_bias: false``) is a ShapeError: a penalty that
        silently does nothing is a wrong result. Call after the weights are built."""
        out = {}
        for arg, config in self.config.items():
            if not arg.endswith("_regularizer") or arg == "activity_regularizer" \
                    or config is None:
                continue
            weight = self.REGULARIZED_WEIGHTS.get(arg)
            if weight is None:
                raise ShapeError(f"{self.TYPE} layer '{self.name}': no weight is known for "
                                 f"'{arg}'")
            if weight not in self.weight_shapes:
                have = ", ".join(self.weight_shapes) or "none"
                raise ShapeError(f"{self.TYPE} layer '{self.name}': {arg} is set, but the "
                                 f"layer has no '{weight}' weight (its weights: {have})")
            out[weight] = (arg, config)
        return out

    def param_count(self) -> tuple:
        """(trainable, non-trainable) element counts of this layer's own weights."""
        trainable = non_trainable = 0
        for spec in self.weight_shapes.values():
            n = math.prod(spec.shape)
            if spec.trainable and self.trainable:
                trainable += n
            else:
                non_trainable += n
        return trainable, non_trainable

    # -- Keras' node-indexed accessors (reference item 7) ------------------------------
    def _node(self, index: int):
        if not self.inbound_nodes:
            raise ValueError(f"layer '{self.name}' has never been called, so it has no nodes")
        if not 0 <= index < len(self.inbound_nodes):
            raise ValueError(f"layer '{self.name}' has {len(self.inbound_nodes)} node(s); "
                             f"node index {index} does not exist")
        return self.inbound_nodes[index]

    def _single(self, what: str, method: str, values):
        if len(self.inbound_nodes) > 1 and any(v != values[0] for v in values[1:]):
            raise ValueError(
                f"layer '{self.name}' has multiple inbound nodes ({len(self.inbound_nodes)}) "
                f"with different {what}s, so '{what}' is ill-defined: use "
                f"{method}(node_index) instead")
        return values[0]

    def output_at(self, index: int):
        return _unwrap(self._node(index).output_tensors)

    def input_at(self, index: int):
        return _unwrap(self._node(index).input_tensors)

    def input_shape_at(self, index: int):
        return _unwrap([t.shape for t in self._node(index).input_tensors])

    def output_shape_at(self, index: int):
        return _unwrap([t.shape for t in self._node(index).output_tensors])

    def _only_node(self, what: str):
        """Node 0, provided it is the only one (Keras' rule for ``layer.output``)."""
        node = self._node(0)
        if len(self.inbound_nodes) > 1:
            raise ValueError(
                f"layer '{self.name}' has multiple inbound nodes "
                f"({len(self.inbound_nodes)}), so '{what}' is ill-defined: use "
                f"{what}_at(node_index) instead")
        return node

    @property
    def output(self):
        return _unwrap(self._only_node("output").output_tensors)

    @property
    def input(self):
        return _unwrap(self._only_node("input").input_tensors)

    @property
    def input_shape(self):
        self._node(0)
        shapes = [self.input_shape_at(i) for i in range(len(self.inbound_nodes))]
        return self._single("input shape", "input_shape_at", shapes)

    @property
    def output_shape(self):
        self._node(0)
        shapes = [self.output_shape_at(i) for i in range(len(self.inbound_nodes))]
        return self._single("output shape", "output_shape_at", shapes)

    def __repr__(self):
        return f"<{self.TYPE} '{self.name}'>"


def call_mask_sources(layer, sources: list, n_outputs: int) -> list:
    """The masks one call's outputs carry (Keras' compute_mask at build time): the
    layer's ``mask_sources`` when an input carries a mask or the layer makes one, else
    none. The compiler, a sub-model and the exporters' walks all use this one rule."""
    if any(sources) or layer.makes_mask():
        return layer.mask_sources(sources, n_outputs)
    return [None] * n_outputs


def _unwrap(items):
    return items[0] if len(items) == 1 else list(items)


def distinct_feature_axes(layer: Layer, axes, rank: int) -> tuple:
    """``axes`` (an int or a list, negative counted from the end) as sorted non-negative
    feature axes of rank-``rank`` inputs; the batch axis, an axis out of range or one
    given twice is a ShapeError naming the layer."""
    written = axes if isinstance(axes, list) else [axes]
    out = []
    for a in written:
        if not -rank <= a < rank or a % rank == 0 or a % rank in out:
            raise ShapeError(f"{layer.TYPE} layer '{layer.name}': axis {a} is not a "
                             f"distinct feature axis of rank-{rank} inputs (batch included)")
        out.append(a % rank)
    return tuple(sorted(out))


def single_shape(layer: Layer, input_shapes: list) -> tuple:
    """The one input shape of a single-input layer (after the count check)."""
    layer.check_input_count(len(input_shapes))
    return tuple(input_shapes[0])


def known_feature_size(shape, layer: Layer) -> int:
    """Number of values per sample; every feature axis must be known."""
    if any(d is None for d in shape[1:]):
        raise ShapeError(f"{layer.TYPE} layer '{layer.name}' needs fully known feature "
                         f"dimensions, got {shape}")
    return math.prod(shape[1:])   # exact: int64 np.prod wraps around for huge shapes
