"""A .keras file is untrusted: each way one can carry code or exhaust resources is
refused with one located line, before anything is written or executed."""
import io
import json
import sys
import warnings
import zipfile

import pytest

from graphspec.errors import InputError
from graphspec.interop import keras_archive
from graphspec.interop.keras_import import import_keras


@pytest.fixture(scope="session")
def tiny(keras, keras_dir):
    """A valid two-layer model file to take apart."""
    L = keras.layers
    x = keras.Input((4,), name="x")
    model = keras.Model(x, L.Dense(2, name="head")(L.Dense(3, name="dense")(x)), name="tiny")
    path = keras_dir / "tiny.keras"
    model.save(path)
    return path


def members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {m.filename: archive.read(m) for m in archive.infolist()}


def write_zip(path, items, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # duplicate names, on purpose
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in items:
                archive.writestr(name, data)
    return path


def with_config(tiny, tmp_path, edit):
    parts = members(tiny)
    config = json.loads(parts["config.json"])
    edit(config)
    parts["config.json"] = json.dumps(config).encode()
    return write_zip(tmp_path / "edited.keras", parts.items())


def refused(path, *fragments):
    with pytest.raises(InputError) as info:
        import_keras(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_tiny_model_imports(tiny):
    assert list(import_keras(tiny).spec["models"]) == ["tiny"]


def test_lambda_bytecode_is_refused_never_run(keras, keras_dir):
    L = keras.layers
    x = keras.Input((4,), name="x")
    path = keras_dir / "lambda.keras"
    keras.Model(x, L.Lambda(lambda t: t * 2, name="double")(x), name="with_lambda").save(path)
    config = members(path)["config.json"].decode()
    assert '"__lambda__"' in config                 # marshalled bytecode in the file
    refused(path, "config.layers[1]", "Lambda layer 'double'", "bytecode",
            "rewrite it as a graphspec expression")


def test_custom_layer_class_is_refused(keras, keras_dir):
    @keras.saving.register_keras_serializable(package="mine")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2
    x = keras.Input((4,), name="x")
    path = keras_dir / "custom.keras"
    keras.Model(x, Doubler(name="doubler")(x), name="custom").save(path)
    refused(path, "config.layers[1]", "Doubler 'doubler' is a custom object",
            "mine>Doubler", "graphspec expression")


@pytest.mark.parametrize("field, value", [
    ("module", "os"), ("module", "builtins"), ("registered_name", "evil>Dense")])
def test_foreign_module_or_registered_name_is_refused(tiny, tmp_path, field, value):
    def edit(config):
        config["config"]["layers"][2][field] = value
    refused(with_config(tiny, tmp_path, edit), "config.layers[2]", "custom object",
            repr(value))


@pytest.mark.parametrize("key, value", [
    ("kernel_initializer", {"module": "mine", "class_name": "Evil", "config": {},
                            "registered_name": "mine>Evil"}),
    ("kernel_constraint", {"module": "keras.constraints", "class_name": "Evil",
                           "config": {}, "registered_name": "mine>Evil"}),
    ("activation", {"module": "builtins", "class_name": "function",
                    "config": "my_activation", "registered_name": "function"}),
])
def test_custom_objects_inside_a_layer_are_refused(tiny, tmp_path, key, value):
    def edit(config):
        config["config"]["layers"][1]["config"][key] = value
    refused(with_config(tiny, tmp_path, edit), f"config.layers[1].config.{key}",
            "is a custom object")


def test_unknown_keras_initializer_arguments_are_refused(tiny, tmp_path):
    def edit(config):
        config["config"]["layers"][1]["config"]["kernel_initializer"] = {
            "module": "keras.initializers", "class_name": "RandomNormal",
            "config": {"mean": 0.0, "stddev": 3.0}, "registered_name": None}
    refused(with_config(tiny, tmp_path, edit),
            "config.layers[1].config.kernel_initializer", "Keras default arguments")


@pytest.mark.parametrize("name", ["../../evil.txt", "/etc/evil", "assets\\..\\x",
                                  "C:evil", "a/../../b"])
def test_path_traversal_member_is_refused(tiny, tmp_path, name):
    parts = list(members(tiny).items()) + [(name, b"x")]
    refused(write_zip(tmp_path / "traversal.keras", parts), "escapes the archive")


def test_duplicate_members_are_refused(tiny, tmp_path):
    parts = list(members(tiny).items()) + [("config.json", b"{}")]
    refused(write_zip(tmp_path / "twice.keras", parts), "two members named 'config.json'")


def test_zip_bomb_is_refused_before_inflating(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(keras_archive, "MAX_ARRAY_BYTES", 1 << 20)
    parts = list(members(tiny).items()) + [("assets/zeros", bytes(32 << 20))]
    path = write_zip(tmp_path / "bomb.keras", parts, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20            # 32 MiB declared, ~32 KiB on disk
    refused(path, "more than the", "zip bomb")


def test_oversized_config_member_is_refused(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(keras_archive, "MAX_CONFIG_BYTES", 256)
    refused(tiny, "config.json", "more than the")


def test_too_many_members_are_refused(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(keras_archive, "MAX_ARCHIVE_MEMBERS", 5)
    parts = list(members(tiny).items()) + [(f"assets/{i}", b"") for i in range(5)]
    refused(write_zip(tmp_path / "many.keras", parts), "8 members")


def _rewrite_h5(tiny, tmp_path, edit):
    import h5py
    parts = members(tiny)
    buffer = io.BytesIO(parts["model.weights.h5"])
    with h5py.File(buffer, "a") as h5:
        edit(h5)
    parts["model.weights.h5"] = buffer.getvalue()
    return write_zip(tmp_path / "h5.keras", parts.items())


def test_h5_external_link_is_refused(tiny, tmp_path):
    import h5py
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as h5:
        h5["data"] = [1.0, 2.0, 3.0]

    def edit(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars/0"] = h5py.ExternalLink(str(secret), "data")
    refused(_rewrite_h5(tiny, tmp_path, edit), "layers/dense/vars/0",
            "link to another file")


def test_h5_external_dataset_storage_is_refused(tiny, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes(48))

    def edit(h5):
        del h5["layers/dense/vars/0"]
        h5.create_dataset("layers/dense/vars/0", shape=(4, 3), dtype="float32",
                          external=[(str(outside), 0, 48)])
    refused(_rewrite_h5(tiny, tmp_path, edit), "outside the file")


def test_h5_weights_of_another_model_are_refused(tiny, tmp_path):
    def edit(h5):
        h5["layers/dense/vars"].attrs["name"] = "someone_else"
    refused(_rewrite_h5(tiny, tmp_path, edit), "config.layers[1]", "someone_else",
            "do not belong")


def test_h5_wrong_variable_count_is_refused(tiny, tmp_path):
    def edit(h5):
        del h5["layers/dense/vars/1"]
    refused(_rewrite_h5(tiny, tmp_path, edit), "1 variable(s) for layer 'dense'")


@pytest.mark.parametrize("text, fragment", [
    ('{"class_name": "Functional", "config": {"x": NaN}}', "not valid JSON"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ("not json at all", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_config_json(tmp_path, text, fragment):
    path = tmp_path / "config.json"
    path.write_text(text)
    refused(path, fragment)


def test_missing_h5py_is_one_line(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    refused(tiny, "graphspec import-keras needs the keras extra: "
                  "pip install 'graphspec[keras]'")


def test_graphspec_never_imports_keras():
    import pathlib

    import graphspec
    root = pathlib.Path(graphspec.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "import keras" not in text and "from keras" not in text, path


def test_shapes_keras_recorded_must_be_graphspecs(tiny, tmp_path):
    def edit(config):
        config["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["shape"] = \
            [None, 7]
    refused(with_config(tiny, tmp_path, edit), "config.layers[2].inbound_nodes[0].args[0]",
            "Keras records shape (None, 7)", "graphspec infers (None, 3)")


def test_activation_graphspec_lacks_is_refused_at_its_json_path(tiny, tmp_path):
    def edit(config):
        config["config"]["layers"][1]["config"]["activation"] = "sparse_plus"
    refused(with_config(tiny, tmp_path, edit), "config.layers[1].config.activation",
            "Dense activation='sparse_plus' is not one graphspec has")


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, path + (i,))


def test_any_value_of_the_wrong_type_gives_one_line(tiny, tmp_path):
    """Every value of the config replaced by a value of another JSON type (each type in
    turn, one per value to stay fast): the import succeeds or refuses with an
    InputError, never another exception (no 'internal error')."""
    import copy
    original = json.loads(members(tiny)["config.json"])
    target = tmp_path / "config.json"
    outcomes = set()
    replacements = ([], {}, None, "x", -1, [["x", 0, 0]], 2.5)
    for n, path in enumerate(list(_paths(original))[1:]):
        for replacement in (replacements[n % 7],):
            config = copy.deepcopy(original)
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = replacement
            target.write_text(json.dumps(config))
            try:
                import_keras(target)
                outcomes.add("ok")
            except InputError as exc:
                assert "\n" not in str(exc)
                outcomes.add("refused")
    assert outcomes == {"ok", "refused"}
