"""The split pool (ops/threads.py): results are bit-identical with and without
threads, errors in a helper reach the caller, small passes are never split."""
import numpy as np
import pytest

from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.ops.conv import conv2d
from graphspec.ops.pooling import max_pool2d
from graphspec.ops import threads


def _run_cnn_step(rng_seed=0):
    """Conv(relu) -> max pool -> conv(relu) -> avg of squares: forward and gradients."""
    rng = np.random.default_rng(rng_seed)
    x = Variable(rng.standard_normal((6, 12, 12, 3)).astype(np.float32), requires_grad=True)
    k1 = Variable(rng.standard_normal((3, 3, 3, 8)).astype(np.float32), requires_grad=True)
    b1 = Variable(rng.standard_normal(8).astype(np.float32), requires_grad=True)
    k2 = Variable(rng.standard_normal((3, 3, 8, 4)).astype(np.float32), requires_grad=True)
    with recording():
        h = conv2d(x, k1, b1, activation="relu")
        p = max_pool2d(h, 2)
        y = conv2d(p, k2, None, activation="relu")
        loss = ops.mean(ops.mul(y, y))
    backward(loss)
    return [y.data, x.grad, k1.grad, b1.grad, k2.grad]


@pytest.fixture
def split_everything(monkeypatch):
    """Split every pass with at least two rows into two parts."""
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 2)
    monkeypatch.setattr(threads._POOL, "parts", 2)


def test_threaded_and_unthreaded_results_are_bit_identical(monkeypatch):
    monkeypatch.setattr(threads._POOL, "parts", 1)
    alone = _run_cnn_step()
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 2)
    monkeypatch.setattr(threads._POOL, "parts", 2)
    split = _run_cnn_step()
    for a, b in zip(alone, split):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_split_covers_every_row_once(split_everything):
    seen = np.zeros(7, int)

    def work(start, stop):
        seen[start:stop] += 1
    threads.run_split(work, 7, 1 << 30)
    assert seen.tolist() == [1] * 7


def test_an_error_in_the_helper_reaches_the_caller(split_everything):
    def work(start, stop):
        if start > 0:
            raise ValueError("helper part failed")
    with pytest.raises(ValueError, match="helper part failed"):
        threads.run_split(work, 4, 1 << 30)
    threads.run_split(lambda a, b: None, 4, 1 << 30)     # the pool still works


def test_small_passes_are_not_split():
    calls = []
    threads.run_split(lambda a, b: calls.append((a, b)), 10, threads.MIN_ELEMENTS - 1)
    assert calls == [(0, 10)]


def test_split_map_broadcasts_lower_rank_inputs(split_everything):
    a = np.arange(12.0).reshape(4, 3)
    out = np.empty_like(a)
    threads.split_map(np.add, out, a, np.array([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(out, a + [10.0, 20.0, 30.0])


def test_chunked_patch_matrices_give_the_same_convolution(monkeypatch):
    """Large patch matrices are built a few images at a time and rebuilt for the kernel
    gradient instead of held: same output, same gradients (float64, summed in chunks)."""
    from graphspec.ops import conv as conv_ops
    whole = _conv_grads()
    monkeypatch.setattr(conv_ops, "PATCH_CHUNK_ELEMENTS", 200)   # 1-2 images per chunk
    chunked = _conv_grads()
    np.testing.assert_array_equal(whole[0], chunked[0])
    for a, b in zip(whole[1:], chunked[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _conv_grads():
    rng = np.random.default_rng(3)
    x = Variable(rng.standard_normal((5, 7, 6, 2)), requires_grad=True)
    k = Variable(rng.standard_normal((3, 2, 2, 4)), requires_grad=True)
    b = Variable(rng.standard_normal(4), requires_grad=True)
    with recording():
        y = conv2d(x, k, b, strides=(2, 1), padding="same", activation="relu")
        loss = ops.sum_(ops.mul(y, y))
    backward(loss)
    return [y.data, x.grad, k.grad, b.grad]


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_updates_are_bit_identical_split_or_not(monkeypatch, amsgrad):
    from graphspec.train.optimizers import Adam

    def three_steps():
        rng = np.random.default_rng(5)
        w = Variable(rng.standard_normal((9, 4)).astype(np.float32), requires_grad=True)
        b = Variable(rng.standard_normal(4).astype(np.float32), requires_grad=True)
        opt = Adam(learning_rate=0.01, amsgrad=amsgrad)
        for _ in range(3):
            w.grad = rng.standard_normal(w.shape).astype(np.float32)
            b.grad = rng.standard_normal(b.shape).astype(np.float32)
            opt.apply([("w", w), ("b", b)])
        return w.data, b.data
    monkeypatch.setattr(threads._POOL, "parts", 1)
    alone = three_steps()
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 2)
    monkeypatch.setattr(threads._POOL, "parts", 2)
    for a, b in zip(alone, three_steps()):
        np.testing.assert_array_equal(a, b)
