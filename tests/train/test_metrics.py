"""Metrics: exact numbers (Keras documentation examples), accuracy resolution, means."""
import numpy as np
import pytest

from graphspec.autodiff import Variable
from graphspec.errors import InputError, SpecError
from graphspec.train import metrics as M


def test_binary_accuracy_numbers():
    y_true = np.array([[1], [1], [0], [0]])
    y_pred = np.array([[0.98], [1], [0], [0.6]])
    out = M.binary_accuracy(y_true, y_pred)
    np.testing.assert_array_equal(out, [1, 1, 1, 0])
    assert M.reduce_metric(out) == 0.75                                   # Keras doc: 0.75
    assert M.reduce_metric(out, [1, 0, 0, 1]) == 0.5                      # Keras doc: 0.5
    np.testing.assert_array_equal(M.binary_accuracy(y_true, y_pred, threshold=0.99),
                                  [0, 1, 1, 1])
    # (batch,) targets against a (batch, 1) output, and threshold is strict ">"
    np.testing.assert_array_equal(M.binary_accuracy(np.array([1, 0]),
                                                    np.array([[0.5], [0.5]])), [0, 1])
    # several binary outputs: mean over the last axis
    np.testing.assert_allclose(M.binary_accuracy(np.array([[1, 0, 1, 1]]),
                                                 np.array([[0.9, 0.2, 0.4, 0.7]])), [0.75])


def test_categorical_accuracy_numbers():
    y_true = np.array([[0, 0, 1], [0, 1, 0]])
    y_pred = np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    np.testing.assert_array_equal(M.categorical_accuracy(y_true, y_pred), [0, 1])
    assert M.reduce_metric(M.categorical_accuracy(y_true, y_pred), [0.7, 0.3]) == \
        pytest.approx(0.3)                                               # Keras doc: 0.3
    # ties: the first maximum wins (numpy and TensorFlow argmax agree)
    np.testing.assert_array_equal(M.categorical_accuracy(np.array([[1, 0]]),
                                                         np.array([[0.5, 0.5]])), [1])


def test_sparse_categorical_accuracy_numbers():
    y_pred = np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(np.array([[2], [1]]), y_pred),
                                  [0, 1])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(np.array([2, 1]), y_pred),
                                  [0, 1])
    np.testing.assert_array_equal(M.sparse_categorical_accuracy(np.array([1.0, 1.0]), y_pred),
                                  [1, 1])
    # sequences: (batch, time) ids against (batch, time, classes): mean over time
    y_pred = np.zeros((2, 4, 3))
    y_pred[..., 0] = 1
    ids = np.array([[0, 0, 1, 0], [2, 2, 2, 0]])
    np.testing.assert_allclose(M.sparse_categorical_accuracy(ids, y_pred), [0.75, 0.25])


def test_regression_metric_numbers():
    y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    y_pred = np.array([[1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(M.mean_absolute_error(y_true, y_pred), [0.5, 0.5])
    np.testing.assert_allclose(M.mean_squared_error(y_true, y_pred * 3), [6.5, 4.5])
    np.testing.assert_allclose(M.get_metric("mae")(y_true, Variable(y_pred)), [0.5, 0.5])
    np.testing.assert_allclose(M.get_metric("mse")(np.array([1.0, 2.0]),
                                                   np.array([[0.0], [0.0]])), [1.0, 4.0])


def test_float32_in_float32_out():
    out = M.categorical_accuracy(np.eye(3), np.eye(3, dtype=np.float32))
    assert out.dtype == np.float32
    out = M.mean_squared_error(np.eye(3), np.eye(3, dtype=np.float32))
    assert out.dtype == np.float32


@pytest.mark.parametrize("loss,y_true,y_pred,expected", [
    ("binary_crossentropy", (None, 1), (None, 1), "binary_accuracy"),
    ("mse", (None, 1), (None, 1), "binary_accuracy"),                 # one unit
    ("binary_crossentropy", (None, 5), (None, 5), "binary_accuracy"),  # multi-label
    ("categorical_crossentropy", (None, 5), (None, 5), "categorical_accuracy"),
    ({"name": "categorical_crossentropy", "from_logits": True}, (None, 5), (None, 5),
     "categorical_accuracy"),
    ("sparse_categorical_crossentropy", (None, 1), (None, 5), "sparse_categorical_accuracy"),
    ("sparse_categorical_crossentropy", None, (None, 5), "sparse_categorical_accuracy"),
    ("mse", (None,), (None, 5), "sparse_categorical_accuracy"),         # fewer dims
    ("mse", (None, 1), (None, 5), "sparse_categorical_accuracy"),       # last dim 1
    ("mse", (None, 10, 5), (None, 10, 5), "categorical_accuracy"),
    (None, None, (None, 5), "categorical_accuracy"),
])
def test_accuracy_resolution(loss, y_true, y_pred, expected):
    assert M.resolve_accuracy(loss, y_true, y_pred) == expected
    for name in ("accuracy", "acc"):
        assert M.get_metric(name, loss, y_true, y_pred).metric_name == expected


def test_get_metric_names_and_config():
    for name, canonical in (("mae", "mean_absolute_error"), ("MSE", "mean_squared_error"),
                            ("binary_accuracy", "binary_accuracy"),
                            ("SparseCategoricalAccuracy", "sparse_categorical_accuracy")):
        assert M.get_metric(name).metric_name == canonical
    fn = M.get_metric({"name": "binary_accuracy", "threshold": 0.9})
    np.testing.assert_array_equal(fn(np.array([[1], [1]]), np.array([[0.95], [0.8]])), [1, 0])
    with pytest.raises(SpecError, match="unknown metric 'auc'"):
        M.get_metric("auc")
    with pytest.raises(SpecError, match="does not take"):
        M.get_metric({"name": "mae", "threshold": 0.9})


def test_shape_errors():
    with pytest.raises(InputError, match="do not match"):
        M.categorical_accuracy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match="do not match"):
        M.sparse_categorical_accuracy(np.zeros(3), np.zeros((2, 4)))
    with pytest.raises(InputError, match="do not match"):
        M.mean_absolute_error(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match="sample_weight"):
        M.reduce_metric(np.zeros(3), np.ones(2))


def test_mean_metric_accumulates_weighted_batches():
    mean = M.MeanMetric()
    mean.update(np.array([1.0, 0.0]))
    mean.update(np.array([1.0, 1.0, 1.0]), sample_weight=np.array([1.0, 2.0, 0.0]))
    assert mean.result() == pytest.approx((1 + 0 + 1 + 2) / (2 + 3))
    mean.reset()
    assert mean.result() == 0.0
    # Keras' loss tracker: one scalar per batch weighted by the batch size
    mean.update(2.0, sample_weight=4)
    mean.update(1.0, sample_weight=2)
    assert mean.result() == pytest.approx(10 / 6)
    assert M.reduce_metric(np.array([1.0, 2.0]), np.zeros(2)) == 0.0
