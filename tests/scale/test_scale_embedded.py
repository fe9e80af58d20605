"""The embedded engine: streamed from .npy files, the same numbers as the in-memory
Model.predict and Trainer.evaluate, bit for bit; bad data fails and writes nothing."""
import io

import numpy as np
import pytest
from scale_util import ROOT, digits_like, mlp, save_dir

import graphspec.api as api
from graphspec.engines import embedded
from graphspec.engines.progress import RowsProgress
from graphspec.io import npystream
from graphspec.errors import InputError
from graphspec.train.job import build_job
from graphspec.train.trainer import Trainer

MULTI_IO = {"vocab": 50, "headline_length": 6, "embedding_dim": 4}


@pytest.fixture
def small_blocks(monkeypatch):
    """Windows of a few batches, so a small .npy input crosses many window boundaries."""
    monkeypatch.setattr(npystream, "WINDOW_BYTES", 20_000)


@pytest.mark.parametrize("batch_size", [32, 7, 1000])
def test_streamed_predict_equals_in_memory_predict(tmp_path, small_blocks, batch_size):
    graph, data = mlp(), digits_like(1003)
    model = graph.model()
    expected = model.predict(data["pixels"], batch_size=batch_size)["digit"]
    np.save(tmp_path / "pixels.npy", data["pixels"])            # float64 on disk
    inputs = {"pixels": str(tmp_path / "pixels.npy")}
    written = embedded.predict(model, inputs, tmp_path / "digit.npy", batch_size)
    assert written == {"digit": str(tmp_path / "digit.npy")}
    got = np.load(tmp_path / "digit.npy")
    assert got.dtype == np.float32 and np.array_equal(got, expected)
    embedded.predict(model, inputs, tmp_path / "out.npz", batch_size)
    with np.load(tmp_path / "out.npz") as archive:
        assert archive.files == ["digit"] and np.array_equal(archive["digit"], expected)
    in_memory = embedded.predict(model, data["pixels"], None, batch_size)
    assert np.array_equal(in_memory["digit"], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digit.npy", "out.npz",
                                                          "pixels.npy"]


def test_multi_input_multi_output_to_a_directory(tmp_path, small_blocks):
    graph = api.load(ROOT / "specs" / "multi_io.yaml", seed=3, params=MULTI_IO)
    model = graph.model()
    rng = np.random.default_rng(0)
    arrays = {"main_input": rng.integers(0, 50, (301, 6)),
              "aux_input": rng.standard_normal((301, 5)).astype(np.float32)}
    expected = model.predict(arrays, batch_size=16)
    inputs = save_dir(tmp_path / "in", arrays)
    paths = embedded.predict(model, {n: inputs / f"{n}.npy" for n in arrays},
                             f"{tmp_path / 'out'}/", batch_size=16)
    assert sorted(paths) == ["aux_output", "main_output"]
    for name in expected:
        assert np.array_equal(np.load(tmp_path / "out" / f"{name}.npy"), expected[name])
    with pytest.raises(InputError, match="pass a directory"):
        embedded.predict(model, arrays, tmp_path / "one.npy", batch_size=16)


@pytest.mark.parametrize("batch_size", [32, 13])
def test_streamed_evaluate_equals_trainer_evaluate(tmp_path, small_blocks, batch_size):
    graph, data = mlp(), digits_like(999)
    trainer = Trainer(graph, build_job(graph))
    expected = trainer.evaluate(data, batch_size)
    directory = save_dir(tmp_path / "data", data)
    sources = {n: str(directory / f"{n}.npy") for n in data}
    got = embedded.evaluate(trainer, sources, batch_size)
    assert got == expected               # the same floats, not just close ones
    assert list(got) == ["loss", "accuracy"]


def test_nan_in_a_late_batch_fails_and_writes_nothing(tmp_path, small_blocks):
    model = mlp().model()
    x = digits_like(500)["pixels"]
    x[431, 5] = np.nan
    np.save(tmp_path / "pixels.npy", x)
    with pytest.raises(InputError, match=r"row 431\b"):     # the row in the whole file
        embedded.predict(model, {"pixels": str(tmp_path / "pixels.npy")},
                         tmp_path / "digit.npy", batch_size=32)
    assert [p.name for p in tmp_path.iterdir()] == ["pixels.npy"]     # no half file


def test_integer_input_with_fractions_is_refused_per_batch(tmp_path):
    model = api.load(ROOT / "specs" / "multi_io.yaml", seed=3, params=MULTI_IO).model()
    main = np.zeros((40, 6))
    main[33, 2] = 0.5
    arrays = {"main_input": main, "aux_input": np.zeros((40, 5))}
    with pytest.raises(InputError, match=r"0.5 at row 33\b.*integer"):
        embedded.predict(model, arrays, None, batch_size=8)


def test_shapes_and_row_counts_checked_before_any_batch(tmp_path):
    model = mlp().model()
    np.save(tmp_path / "wide.npy", np.zeros((10, 65)))
    with pytest.raises(InputError, match=r"expects shape \(None, 64\) \(batch first\), got "
                                         r"an array of shape \(10, 65\) in '.*wide.npy'"):
        embedded.predict(model, {"pixels": str(tmp_path / "wide.npy")}, None)
    graph = mlp()
    data = digits_like(10)
    data["digit"] = data["digit"][:9]
    with pytest.raises(InputError, match="different numbers of rows"):
        embedded.evaluate(Trainer(graph, build_job(graph)), data)
    with pytest.raises(InputError, match=r"missing \['pixels'\], unexpected \['pixel'\]"):
        embedded.predict(model, {"pixel": data["pixels"]}, None)


def test_progress_line_shows_rows_per_second_and_eta():
    stream = io.StringIO()
    bar = RowsProgress("predict", 1000, stream=stream, quiet_below=0.0)
    assert "ETA" in bar._line(250, {}) and "250/1000 rows" in bar._line(250, {})
    bar.advance(1000)
    bar.finish()
    line = stream.getvalue()
    assert line.startswith("predict 1000/1000 rows [") and "rows/s" in line
    quiet = io.StringIO()
    RowsProgress("predict", 10, stream=quiet).finish()          # a short run off a tty
    assert quiet.getvalue() == ""
