"""The converter table against this Keras: every argument Keras writes is one graphspec
has or is listed with the value graphspec computes; what imports and what is refused."""
import pytest

from graphspec.interop.keras_export import GRAPHSPEC_ONLY
from graphspec.interop.keras_import import import_keras
from graphspec.interop.keras_layers import CONVERTERS, IGNORED_ARGS, KERAS_REFUSED
from graphspec.layers.registry import REGISTRY

MINIMAL = {"Dense": (2,), "Conv1D": (2, 3), "Conv2D": (2, 3), "Embedding": (3, 2),
           "SimpleRNN": (2,), "LSTM": (2,), "GRU": (2,), "Activation": ("relu",),
           "Dot": (1,), "Dropout": (0.5,), "Permute": ((2, 1),), "RepeatVector": (2,),
           "Reshape": ((2,),), "MaxPooling1D": (2,), "MaxPooling2D": (2,),
           "AveragePooling2D": (2,), "AveragePooling1D": (2,), "GaussianDropout": (0.1,),
           "GaussianNoise": (0.1,), "SpatialDropout1D": (0.1,), "SpatialDropout2D": (0.1,),
           "Rescaling": (0.5,), "Conv2DTranspose": (2, 3), "DepthwiseConv2D": (3,),
           "SeparableConv2D": (2, 3), "MultiHeadAttention": (2, 3)}


@pytest.mark.parametrize("class_name", sorted(set(CONVERTERS) - {"Bidirectional",
                                                                  "TimeDistributed"}))
def test_converter_table_matches_this_keras(keras, class_name):
    """Every argument of a default Keras layer is a graphspec argument or listed with
    the one value graphspec computes; every graphspec argument is a Keras one."""
    config = getattr(keras.layers, class_name)(*MINIMAL.get(class_name, ())).get_config()
    ours = REGISTRY[class_name].ARGS
    converter = CONVERTERS[class_name]
    for key, value in config.items():
        if key in ("name", "trainable", "dtype") or key in ours or key in IGNORED_ARGS:
            continue
        assert key in converter.keras_only, f"{class_name}.{key} = {value!r}"
        assert value == converter.keras_only[key], f"{class_name}.{key}"
    keras_side = set(config) | {"activity_regularizer"}   # a base Layer argument
    assert set(ours) - keras_side == set(GRAPHSPEC_ONLY.get(class_name, {})) \
        | set(converter.call_args)


BASE = {
    "Activation", "Add", "Average", "AveragePooling2D", "BatchNormalization",
    "Bidirectional", "Concatenate", "Conv1D", "Conv2D", "Dense", "Dot", "Dropout",
    "Embedding", "Flatten", "GRU", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "LSTM", "LayerNormalization", "MaxPooling1D", "MaxPooling2D", "Maximum",
    "Minimum", "Multiply", "Permute", "RepeatVector", "Reshape", "SimpleRNN",
    "Subtract", "TimeDistributed", "ZeroPadding2D"}


def test_importable_and_refused_classes():
    """The list the README shows: what imports, and what is refused with a reason
    (the zoo II layers are checked in test_keras_zoo2.py)."""
    assert BASE <= set(CONVERTERS)
    assert set(KERAS_REFUSED) == {"Lambda"}
    assert not set(KERAS_REFUSED) & set(CONVERTERS)


@pytest.mark.parametrize("make, name, shape", [
    (lambda L: L.ActivityRegularization(0.1), "ActivityRegularization", (4, 2)),
    (lambda L: L.ConvLSTM1D(2, 3), "ConvLSTM1D", (3, 5, 2)),
])
def test_unsupported_class_refused_by_name(keras, keras_dir, make, name, shape):
    x = keras.Input(shape)
    path = keras_dir / f"unsupported_{name}.keras"
    keras.Model(x, make(keras.layers)(x)).save(path)
    with pytest.raises(Exception) as info:
        import_keras(path)
    message = str(info.value)
    assert f"Keras layer class {name}" in message and "config.layers[1]" in message
    assert "\n" not in message
