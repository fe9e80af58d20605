"""Layer zoo II (convolution, pooling, activation) tests. Keras 3 on the torch backend is
a reference here: the backend is chosen at Keras' first import, so it is set before any."""
import os
import sys
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def keras():
    keras = pytest.importorskip("keras")
    assert keras.backend.backend() == "torch"
    return keras
