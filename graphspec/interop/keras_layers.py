"""The Keras converter table: one entry per layer type, read in both directions.

Keras 3 and graphspec use the same class and argument names, so the table is keyed by
both at once (import looks up a Keras class name, export a graphspec TYPE) and most of
a layer converts by name. What an entry adds:

- ``keras_only``: arguments Keras has and graphspec does not, with the value under
  which graphspec computes the same thing (``data_format: channels_last``, no
  constraints, no seed of its own).
  Another value is refused by name.
- ``vars`` (or ``groups``): the Keras variables of the layer, in the order Keras writes
  them to ``model.weights.h5`` (``layers/<group>/<sub-path>/vars/0..n``), as graphspec
  weight names. Keras' layouts are graphspec's: Dense kernel (in, units); Conv kernel
  HWIO (kh, kw, in, filters); LSTM gates i, f, c, o in the columns; GRU gates z, r, h
  with a (2, 3u) bias when ``reset_after``; BatchNormalization gamma, beta,
  moving_mean, moving_variance; MultiHeadAttention four dense groups.
- ``call_args``/``call_tensors``/``positional``: what Keras passes at call time that
  graphspec holds as layer arguments or further inputs (attention masks and flags).

``REFUSED`` says why the graphspec types without an entry cannot cross, and
``KERAS_REFUSED`` why some Keras classes are refused with a reason of their own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..layers.registry import REGISTRY

# dropout and recurrent_dropout are graphspec arguments (training only, Keras' masks);
# seed is not: graphspec seeds every random draw through the run's generator
_RNN_ONLY = {"stateful": False, "unroll": False, "kernel_constraint": None,
             "recurrent_constraint": None, "bias_constraint": None, "seed": None}
_CHANNELS_LAST = {"data_format": "channels_last"}
# Arguments whose value graphspec cannot hold differently but that change nothing
# it computes (none since the recurrent layers take zero_output_for_mask).
IGNORED_ARGS = {a for a in ("zero_output_for_mask",) if a not in REGISTRY["LSTM"].ARGS}


def _dense_vars(c):
    return ["kernel"] + (["bias"] if c.get("use_bias", True) else [])


def _rnn_vars(c):
    return ["kernel", "recurrent_kernel"] + (["bias"] if c.get("use_bias", True) else [])


def _bn_vars(c):
    return (["gamma"] if c.get("scale", True) else []) + \
        (["beta"] if c.get("center", True) else []) + ["moving_mean", "moving_variance"]


def _ln_vars(c):
    # rms_scaling (LayerNormalization): gamma always, never beta (Keras' build)
    rms = c.get("rms_scaling", False)
    return (["gamma"] if c.get("scale", True) or rms else []) + \
        (["beta"] if c.get("center", True) and not rms else [])


def _attention_vars(c):
    return (["scale"] if c.get("use_scale") else []) \
        + (["concat_score_weight"] if c.get("score_mode") == "concat" else [])


def _one(name):
    return lambda c: [name]


@dataclass
class Converter:
    type: str                                   # graphspec TYPE == Keras class name
    keras_only: dict = field(default_factory=dict)
    # config -> graphspec weight names in Keras' variable order; None stands for a
    # Keras variable graphspec has no use for (Normalization's adapt count).
    vars: object = None
    sub_path: str = ""                          # where Keras keeps the vars ("cell")
    # graphspec layer arguments that Keras takes as call arguments of every node
    call_args: tuple = ()
    # Keras call keywords holding tensors that graphspec takes as further inputs, in
    # order; a name also in call_args is a flag that is true when the tensor is given
    call_tensors: tuple = ()
    positional: int = 0        # inputs Keras takes one per argument (0: one list)
    groups: object = None      # config -> [(sub-path, weight names)] for several groups

    def weight_names(self, config: dict) -> list:
        return self.vars(config) if self.vars else []

    def var_groups(self, config: dict) -> list:
        """Where Keras keeps each variable: [(path under the layer, graphspec names)]."""
        if self.groups:
            return self.groups(config)
        return [(self.sub_path, self.weight_names(config))]


def _mha_groups(c):
    bias = c.get("use_bias", True)
    return [(f"{keras}_dense", [f"{ours}_kernel"] + ([f"{ours}_bias"] if bias else []))
            for keras, ours in (("query", "query"), ("key", "key"), ("value", "value"),
                                ("output", "attention_output"))]


def _table(*entries) -> dict:
    return {e.type: e for e in entries}


CONVERTERS = _table(
    Converter("Dense", {"kernel_constraint": None, "bias_constraint": None,
                        "quantization_config": None, "lora_rank": None,
                        "lora_alpha": None}, _dense_vars),
    Converter("Conv1D", dict(_CHANNELS_LAST, kernel_constraint=None, bias_constraint=None),
              _dense_vars),
    Converter("Conv2D", dict(_CHANNELS_LAST, kernel_constraint=None, bias_constraint=None),
              _dense_vars),
    Converter("Embedding", {"embeddings_constraint": None, "quantization_config": None,
                            "sparse": False, "lora_rank": None, "lora_alpha": None},
              lambda c: ["embeddings"]),
    Converter("BatchNormalization", {"beta_constraint": None, "gamma_constraint": None,
                                     "synchronized": False, "renorm": False,
                                     "renorm_clipping": None, "renorm_momentum": 0.99},
              _bn_vars),
    Converter("LayerNormalization", {"beta_constraint": None, "gamma_constraint": None},
              _ln_vars),
    Converter("SimpleRNN", dict(_RNN_ONLY), _rnn_vars, "cell"),
    Converter("LSTM", dict(_RNN_ONLY), _rnn_vars, "cell"),
    Converter("GRU", dict(_RNN_ONLY), _rnn_vars, "cell"),
    Converter("Bidirectional"),                 # vars: its two recurrent layers'
    Converter("TimeDistributed"),               # vars: the wrapped layer's
    Converter("MaxPooling1D", dict(_CHANNELS_LAST)),
    Converter("MaxPooling2D", dict(_CHANNELS_LAST)),
    Converter("AveragePooling2D", dict(_CHANNELS_LAST)),
    Converter("GlobalAveragePooling2D", dict(_CHANNELS_LAST)),
    Converter("GlobalMaxPooling2D", dict(_CHANNELS_LAST)),
    Converter("ZeroPadding2D", dict(_CHANNELS_LAST)),
    Converter("Flatten", dict(_CHANNELS_LAST)),
    Converter("Dropout", {"seed": None}),
    Converter("Masking"),
    *(Converter(t) for t in ("Activation", "Add", "Subtract", "Multiply", "Average",
                             "Maximum", "Minimum", "Concatenate", "Dot", "Permute",
                             "RepeatVector", "Reshape")),
    # Layer zoo II
    Converter("Conv2DTranspose", dict(_CHANNELS_LAST, kernel_constraint=None,
                                      bias_constraint=None), _dense_vars),
    Converter("DepthwiseConv2D", dict(_CHANNELS_LAST, depthwise_constraint=None,
                                      bias_constraint=None), _dense_vars),
    Converter("SeparableConv2D", dict(_CHANNELS_LAST, depthwise_constraint=None,
                                      pointwise_constraint=None, bias_constraint=None),
              lambda c: ["depthwise_kernel", "pointwise_kernel"]
              + (["bias"] if c.get("use_bias", True) else [])),
    Converter("GroupNormalization", {"beta_constraint": None, "gamma_constraint": None},
              _ln_vars),
    Converter("PReLU", {"alpha_constraint": None}, _one("alpha")),
    # Keras keeps given statistics in the config (no variables), adapted ones as
    # variables mean, variance and count.
    Converter("Normalization", {}, lambda c: [] if c.get("mean") is not None
              else ["mean", "variance", None]),
    Converter("Attention", {"seed": None}, _attention_vars,
              call_args=("use_causal_mask", "return_attention_scores")),
    Converter("AdditiveAttention", {"seed": None}, _attention_vars,
              call_args=("use_causal_mask", "return_attention_scores")),
    Converter("MultiHeadAttention", {"use_gate": False, "sliding_window": None,
                                     "activity_regularizer": None, "kernel_constraint": None,
                                     "bias_constraint": None, "seed": None},
              groups=_mha_groups, positional=2,
              call_args=("use_causal_mask", "return_attention_scores", "attention_mask"),
              call_tensors=("key", "attention_mask")),
    *(Converter(t, {"seed": None}) for t in ("GaussianDropout", "GaussianNoise",
                                             "SpatialDropout1D", "SpatialDropout2D")),
    *(Converter(t, dict(_CHANNELS_LAST)) for t in (
        "AveragePooling1D", "Cropping2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
        "UpSampling2D", "ZeroPadding1D")),
    *(Converter(t) for t in ("Rescaling", "UnitNormalization", "Cropping1D", "ELU",
                             "LeakyReLU", "ReLU", "Softmax", "UpSampling1D")),
)
# Only the types this graphspec has (the table may run ahead of the registry).
CONVERTERS = {k: v for k, v in CONVERTERS.items() if k in REGISTRY}

# graphspec layer types with no Keras counterpart, and why.
REFUSED = {
    "Lambda": "a graphspec expression; Keras' Lambda holds Python bytecode, which "
              "graphspec neither writes nor runs",
    "Merge": "a graphspec expression over several inputs; Keras has no safe equivalent",
}
# Keras classes refused with a reason of their own (the rest: "no converter").
KERAS_REFUSED = {
    "Lambda": "its function is marshalled Python bytecode, which graphspec never runs: "
              "rewrite it as a graphspec expression layer (type: Lambda, expr: ...; "
              "several inputs: type: Merge)",
}
# Keras model classes, converted to graphspec models (sub-models when nested).
MODEL_CLASSES = ("Functional", "Sequential", "Model")
KERAS_MODULES = ("keras.layers", "keras", "keras.src.models.functional",
                 "keras.src.models.sequential", "keras.models", "keras.src.models.model")

# Keras initializer class names <-> graphspec names, with Keras' default arguments.
INITIALIZERS = {
    "GlorotUniform": ("glorot_uniform", {}), "GlorotNormal": ("glorot_normal", {}),
    "HeNormal": ("he_normal", {}), "HeUniform": ("he_uniform", {}),
    "LecunNormal": ("lecun_normal", {}), "Orthogonal": ("orthogonal", {"gain": 1.0}),
    "Zeros": ("zeros", {}), "Ones": ("ones", {}),
    "RandomUniform": ("random_uniform", {"minval": -0.05, "maxval": 0.05}),
    "RandomNormal": ("random_normal", {"mean": 0.0, "stddev": 0.05}),
    "TruncatedNormal": ("truncated_normal", {"mean": 0.0, "stddev": 0.05}),
    "LecunUniform": ("lecun_uniform", {}), "Identity": ("identity", {"gain": 1.0}),
    "Constant": ("zeros", {"value": 0.0}),
}
INIT_IGNORED = {"seed", "input_axes", "output_axes"}
# VarianceScaling(scale, mode, distribution) settings that are a named initializer.
VARIANCE_SCALING = {
    (1.0, "fan_avg", "uniform"): "glorot_uniform",
    (1.0, "fan_avg", "truncated_normal"): "glorot_normal",
    (2.0, "fan_in", "truncated_normal"): "he_normal",
    (2.0, "fan_in", "uniform"): "he_uniform",
    (1.0, "fan_in", "truncated_normal"): "lecun_normal",
    (1.0, "fan_in", "uniform"): "lecun_uniform",
}


# Keras operations a functional model records as nodes of their own (``x + 3.0`` on a
# KerasTensor: MobileNetV3's hard_sigmoid), imported as a graphspec expression layer.
# They hold no weights, so they have no group in model.weights.h5.
OPS_MODULE = "keras.src.ops.numpy"
KERAS_OPS = {"Add": "+", "Subtract": "-", "Multiply": "*", "Divide": "/",
             "TrueDivide": "/"}
OP_PREFIX = "ops."


def group_class(obj) -> str:
    """The class name a layer's model.weights.h5 group is named after; operations
    (which have no group) get a name no layer class has."""
    if not isinstance(obj, dict):
        return ""
    if obj.get("module") == OPS_MODULE:
        return OP_PREFIX + str(obj.get("class_name"))
    return obj.get("class_name")


def to_snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: how ``model.weights.h5`` names layer groups."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_group_names(class_names) -> list:
    """Keras' group names for layers of these classes, in order: dense, dense_1, ..."""
    used, out = {}, []
    for cls in class_names:
        base = to_snake_case(cls)
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out
