"""Interop tests. Keras 3 on the torch backend is the reference for the Keras tests:
imported once per session (it is slow to import), only here, never by graphspec."""
import os

# Keras picks its backend when first imported: this must come before any keras import.
os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Worst |graphspec - Keras| per reference model, printed at the end of the session.
AGREEMENT = {}


@pytest.fixture(scope="session")
def keras():
    keras = pytest.importorskip("keras")
    assert keras.backend.backend() == "torch"
    return keras


@pytest.fixture(scope="session")
def keras_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("keras_models")


@pytest.fixture(scope="session", autouse=True)
def _agreement_report():
    yield
    if AGREEMENT:
        width = max(map(len, AGREEMENT))
        print("\nKeras agreement (max |graphspec - keras|, relative to max |keras|):")
        for name, (err, rel) in AGREEMENT.items():
            print(f"  {name.ljust(width)}  {err:.2e}  ({rel:.2e} relative)")


def random_feeds(keras_model, batch=3, seed=0, high=5):
    """One array per Keras input: integers below ``high`` for int inputs, floats else."""
    rng = np.random.default_rng(seed)
    feeds = []
    for tensor in keras_model.inputs:
        shape = (batch,) + tuple(tensor.shape[1:])
        if "int" in str(tensor.dtype):
            feeds.append(rng.integers(0, high, shape).astype(str(tensor.dtype)))
        else:
            feeds.append(rng.standard_normal(shape).astype("float32"))
    return feeds


def compare_outputs(label, expected: list, got: list, tol=1e-5):
    """Every output within ``tol`` (absolute, or relative to the output's scale)."""
    worst = worst_rel = 0.0
    assert len(expected) == len(got)
    for want, have in zip(expected, got):
        want, have = np.asarray(want, np.float64), np.asarray(have, np.float64)
        assert want.shape == have.shape
        err = float(np.max(np.abs(want - have))) if want.size else 0.0
        scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
        worst, worst_rel = max(worst, err), max(worst_rel, err / scale)
    AGREEMENT[label] = (worst, worst_rel)
    assert worst_rel <= tol, f"{label}: graphspec differs from Keras by {worst:.3g}"
    return worst
