"""One self-describing model file: metadata, recorded params, pack, load_model."""
import os
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import graphspec
from graphspec.cli.data_commands import pack
from graphspec.errors import InputError
from graphspec import api
from graphspec.io import metadata, modelfile
from graphspec.io.files import load_npz, save_npz

MLP = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "mlp.yaml")


@pytest.fixture()
def trained(tmp_path):
    """mlp.yaml at input_dim=64 with weights (and metadata) saved as graphspec writes them."""
    graph = graphspec.load(MLP, seed=0, params={"input_dim": 64})
    path = str(tmp_path / "w.npz")
    graph.save_weights(path, extra=metadata.metadata_entry(graph, "mlp", {"input_dim": 64}))
    return graph, path


def test_metadata_records_version_spec_hash_params_and_fingerprint(trained):
    graph, path = trained
    arrays = np.load(path, allow_pickle=False)         # plain numpy reads it
    assert arrays[metadata.META_KEY].dtype == np.uint8
    meta = metadata.read_metadata(load_npz(path), path)
    import hashlib
    with open(MLP, "rb") as handle:
        assert meta["spec_sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert meta["graphspec_version"] == graphspec.__version__
    assert meta["model"] == "mlp" and meta["params"] == {"input_dim": 64}
    assert meta["weights"]["dense_1/kernel"] == {"shape": [64, 64], "dtype": "float32"}
    assert meta["layer_types"] == {"dense_1": "Dense", "dense_2": "Dense", "predictions": "Dense"}
    other = graphspec.load(MLP, seed=0)                 # input_dim=784: another architecture
    assert metadata.make_metadata(other)["fingerprint"] != meta["fingerprint"]
    assert metadata.make_metadata(graph)["fingerprint"] == meta["fingerprint"]


def test_recorded_params_apply_and_a_conflicting_set_is_refused(trained):
    _, path = trained
    params, notes = api.resolve_params(path, {}, MLP)
    assert params == {"input_dim": 64}
    assert notes == [f"using the params recorded in '{path}': input_dim=64"]
    assert api.resolve_params(path, {"input_dim": 64}, MLP) == ({"input_dim": 64}, [])
    with pytest.raises(InputError, match=r"--set input_dim=784 conflicts with input_dim=64 "
                                         r"recorded in"):
        api.resolve_params(path, {"input_dim": 784}, MLP)


def test_open_graph_without_set_gives_the_trained_model(trained):
    graph, path = trained
    x = np.random.default_rng(1).random((3, 64))
    opened = api.open_graph(MLP, path, {}, seed=5)
    assert opened.notes and "input_dim=64" in opened.notes[0]
    np.testing.assert_array_equal(opened.graph.models["mlp"].predict(x)["digit"],
                                  graph.models["mlp"].predict(x)["digit"])


def test_weights_of_another_architecture_say_what_they_were_for(trained, tmp_path):
    _, path = trained
    graph = graphspec.load(MLP, seed=0)            # 784 inputs
    meta = metadata.read_file_metadata(path)
    with pytest.raises(InputError) as info:
        metadata.check_compatible(meta, graph, path)
    message = str(info.value)
    assert "written for model 'mlp' of mlp.yaml (params input_dim=64)" in message
    assert "'dense_1/kernel' is (64, 64) in the file, (784, 64) here" in message
    assert "\n" not in message


@pytest.mark.parametrize("payload, expected", [
    (b"\xff\xfe", "corrupt graphspec metadata"),
    (b"[" * 100000, "corrupt graphspec metadata"),
    (b'{"format": "graphspec", "format_version": 1, "graphspec_version": "0", '
     b'"fingerprint": "00", "weights": {}, "params": {}}', "at fingerprint"),
    (b'{"format": "graphspec", "format_version": 1, "graphspec_version": "0", "fingerprint": "'
     + b"0" * 64 + b'", "weights": {}, "params": {"a": NaN}}', "NaN"),
    (b'{"format": "graphspec", "format_version": 9, "graphspec_version": "9.0"}',
     "newer graphspec"),
])
def test_hostile_metadata_is_refused_in_one_line(tmp_path, payload, expected):
    path = str(tmp_path / "bad.npz")
    np.savez(path, **{metadata.META_KEY: np.frombuffer(payload, np.uint8)})
    with pytest.raises(InputError, match=expected) as info:
        metadata.read_file_metadata(path)
    assert "\n" not in str(info.value)


def test_metadata_of_the_wrong_dtype_is_refused(tmp_path):
    path = str(tmp_path / "bad.npz")
    np.savez(path, **{metadata.META_KEY: np.zeros(3, np.float32)})
    with pytest.raises(InputError, match="1-D uint8"):
        metadata.read_file_metadata(path)


def test_pack_then_load_model_predicts_like_the_original(trained, tmp_path):
    graph, path = trained
    out = str(tmp_path / "mlp.gspec.zip")
    result = CliRunner().invoke(pack, [MLP, "--weights", path, "-o", out])
    assert result.exit_code == 0, result.output
    assert "packed mlp.yaml (model 'mlp'), params input_dim=64 and 6 weight arrays" \
        in result.output
    assert modelfile.is_model_file(out) and not modelfile.is_model_file(path)
    x = np.random.default_rng(2).random((4, 64))
    loaded = api.load_model(out)
    np.testing.assert_array_equal(loaded.models["mlp"].predict(x)["digit"],
                                  graph.models["mlp"].predict(x)["digit"])
    model_file = modelfile.open_model_file(out)
    with open(MLP) as handle:
        assert model_file.spec_text == handle.read()
    assert model_file.params == {"input_dim": 64}
    # The archive is used in place of SPEC (no --set needed) and of --weights.
    opened = api.open_graph(out, None, {})
    np.testing.assert_array_equal(opened.graph.models["mlp"].predict(x)["digit"],
                                  graph.models["mlp"].predict(x)["digit"])
    with pytest.raises(InputError, match="conflicts with input_dim=64"):
        api.open_graph(out, None, {"input_dim": 784})


def test_save_model_round_trips_through_load_model(trained, tmp_path):
    graph, _ = trained
    graph.params = {"input_dim": 64}
    out = str(tmp_path / "m.gspec.zip")
    modelfile.save_model(graph, out, "mlp", vocabularies={"digit": [str(i) for i in range(10)]})
    loaded = api.load_model(out)
    assert loaded.metadata["vocabularies"]["digit"][3] == "3"
    modelfile.save_model(loaded, str(tmp_path / "again.gspec.zip"))   # describes itself again
    again = modelfile.open_model_file(str(tmp_path / "again.gspec.zip"))
    assert again.metadata["vocabularies"] == loaded.metadata["vocabularies"]
    assert again.metadata["model"] == "mlp" and again.params == {"input_dim": 64}


def test_pack_refuses_to_overwrite_its_inputs(trained):
    _, path = trained
    result = CliRunner().invoke(pack, [MLP, "--weights", path, "-o", path])
    assert result.exit_code != 0
    assert "destroy --weights" in (result.output)
    assert metadata.read_file_metadata(path) is not None        # untouched


def test_model_file_with_a_traversal_member_is_refused(tmp_path, trained):
    graph, path = trained
    out = str(tmp_path / "m.gspec.zip")
    graph.params = {"input_dim": 64}
    modelfile.save_model(graph, out, "mlp")
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("../evil.npy", b"")
    with pytest.raises(InputError, match="'..' path"):
        modelfile.open_model_file(out)


def test_weights_file_is_not_a_model_file(trained):
    _, path = trained
    with pytest.raises(InputError, match="graphspec pack SPEC --weights"):
        modelfile.open_model_file(path)


def test_a_model_file_with_a_pickled_member_is_refused(tmp_path, trained):
    graph, _ = trained
    out = str(tmp_path / "m.gspec.zip")
    graph.params = {"input_dim": 64}
    modelfile.save_model(graph, out, "mlp")
    arrays = dict(np.load(out, allow_pickle=False))
    arrays["extra"] = np.array([{"x": 1}], dtype=object)
    with open(out, "wb") as handle:            # np.savez would add .npz to the name
        np.savez(handle, **arrays)
    with pytest.raises(InputError, match="pickled"):
        modelfile.open_model_file(out)


def test_a_model_file_and_weights_of_other_params_are_refused(trained, tmp_path):
    graph, path = trained
    out = str(tmp_path / "m.gspec.zip")
    graph.params = {"input_dim": 64}
    modelfile.save_model(graph, out, "mlp")
    wide = graphspec.load(MLP, seed=0)
    wide_path = str(tmp_path / "wide.npz")
    wide.save_weights(wide_path, extra=metadata.metadata_entry(wide, "mlp", {}))
    with pytest.raises(InputError, match=r"--set input_dim=64 conflicts with input_dim=784 "
                                         r"recorded in '.*wide.npz'"):
        api.open_graph(out, wide_path)
    opened = api.open_graph(out, path)            # same params: the weights apply
    assert opened.metadata["params"] == {"input_dim": 64}


def test_old_weights_without_metadata_still_load(tmp_path):
    graph = graphspec.load(MLP, seed=0, params={"input_dim": 64})
    path = str(tmp_path / "old.npz")
    save_npz(path, {k: v.data for k, v in graph.weights().items()})
    opened = api.open_graph(MLP, path, {"input_dim": 64})
    assert opened.metadata is None and opened.notes == []


def test_metadata_is_read_without_reading_the_weights(trained, tmp_path):
    _, path = trained
    assert metadata.read_file_metadata(path)["params"] == {"input_dim": 64}
    pickled = str(tmp_path / "pickled_meta.npz")
    with zipfile.ZipFile(pickled, "w") as archive:
        import io
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        archive.writestr(metadata.META_KEY + ".npy", buffer.getvalue())
    with pytest.raises(InputError, match="cannot read the graphspec metadata"):
        metadata.read_file_metadata(pickled)
    with pytest.raises(InputError, match="it is a directory"):
        metadata.read_file_metadata(str(tmp_path))


def test_the_cli_flow_prepare_allocate_then_load(trained, tmp_path):
    """open_spec -> memory check -> fill_weights, as the commands run it."""
    graph, path = trained
    x = np.random.default_rng(3).random((2, 64))
    expected = graph.models["mlp"].predict(x)["digit"]
    opened = api.prepare(MLP, path, {})
    assert opened.notes == [f"using the params recorded in '{path}': input_dim=64"]
    assert not opened.graph.weights()                  # nothing allocated yet
    opened.graph.initialize(0)
    opened.graph.load_weights(modelfile.weights_source(opened.graph, path))
    np.testing.assert_array_equal(opened.graph.models["mlp"].predict(x)["digit"], expected)
    packed = str(tmp_path / "m.gspec.zip")
    modelfile.save_model(opened.graph, packed)
    from_file = api.prepare(packed)
    assert modelfile.weights_source(from_file.graph) == packed
    from_file.graph.initialize(1)
    from_file.graph.load_weights(modelfile.weights_source(from_file.graph))
    np.testing.assert_array_equal(from_file.graph.models["mlp"].predict(x)["digit"], expected)


def test_a_weights_file_given_as_spec_is_named_as_such(trained):
    _, path = trained
    with pytest.raises(InputError, match=r"is a weights file, not a model file .*graphspec "
                                         r"pack SPEC --weights"):
        api.prepare(path)


def test_a_fifo_as_spec_is_not_opened(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    assert not modelfile.is_model_file(fifo)
    with pytest.raises(graphspec.GraphspecError, match="not a regular file"):
        api.prepare(fifo)


def test_a_model_file_gets_the_npz_size_limits(trained, tmp_path, monkeypatch):
    graph, _ = trained
    out = str(tmp_path / "m.gspec.zip")
    graph.params = {"input_dim": 64}
    modelfile.save_model(graph, out, "mlp")
    from graphspec.io import files
    monkeypatch.setattr(files, "MAX_ARRAY_BYTES", 1000)      # the model is ~20 KB inflated
    with pytest.raises(InputError, match="zip bomb"):
        modelfile.open_model_file(out)
    with pytest.raises(InputError, match="zip bomb"):
        api.load_model(out)
