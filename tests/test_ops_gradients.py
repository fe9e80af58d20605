"""Every differentiable op against central finite differences (float64)."""
import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec import ops

R = np.random.default_rng(42)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def normal(*shape):
    return R.standard_normal(shape)


CASES = {
    "add_broadcast": (ops.add, [normal(3, 4), normal(4)]),
    "sub": (ops.sub, [normal(3, 4), normal(3, 1)]),
    "mul": (ops.mul, [normal(2, 3), normal(2, 3)]),
    "div": (ops.div, [normal(2, 3), positive(2, 3)]),
    "neg": (ops.neg, [normal(3)]),
    "power": (ops.power, [positive(2, 3), normal(2, 3)]),
    "abs": (ops.abs_, [normal(3, 4) + 0.1]),
    "exp": (ops.exp, [normal(3, 4)]),
    "log": (ops.log, [positive(3, 4)]),
    "sqrt": (ops.sqrt, [positive(3, 4)]),
    "square": (ops.square, [normal(3, 4)]),
    "clip": (lambda a: ops.clip(a, -0.5, 0.5), [normal(4, 5)]),
    "maximum": (ops.maximum, [normal(3, 4), normal(3, 4)]),
    "minimum": (ops.minimum, [normal(3, 4), normal(4)]),
    "matmul": (ops.matmul, [normal(5, 3), normal(3, 4)]),
    "matmul_3d_by_2d": (ops.matmul, [normal(2, 5, 3), normal(3, 4)]),
    "matmul_batched": (ops.matmul, [normal(2, 5, 3), normal(2, 3, 4)]),
    "dot": (ops.dot, [normal(4, 3), normal(3, 2)]),
    "dot_vector": (ops.dot, [normal(4, 3), normal(3)]),
    "batch_dot_2d": (lambda a, b: ops.batch_dot(a, b, axes=1), [normal(4, 3), normal(4, 3)]),
    "batch_dot_3d": (lambda a, b: ops.batch_dot(a, b, axes=(2, 1)), [normal(2, 3, 4), normal(2, 4, 5)]),
    "sum_axis": (lambda a: ops.sum_(a, axis=1), [normal(3, 4, 2)]),
    "sum_all": (ops.sum_, [normal(3, 4)]),
    "mean_keepdims": (lambda a: ops.mean(a, axis=(1, 2), keepdims=True), [normal(3, 4, 2)]),
    "max_axis": (lambda a: ops.max_(a, axis=-1), [normal(3, 5)]),
    "min_axis": (lambda a: ops.min_(a, axis=0), [normal(3, 5)]),
    "reshape": (lambda a: ops.reshape(a, (2, 6)), [normal(3, 4)]),
    "permute": (lambda a: ops.permute(a, (0, 2, 1)), [normal(2, 3, 4)]),
    "expand_dims": (lambda a: ops.expand_dims(a, 1), [normal(2, 3)]),
    "squeeze": (lambda a: ops.squeeze(a, 1), [normal(2, 1, 3)]),
    "getitem_slice": (lambda a: ops.getitem(a, (slice(None), slice(0, 2))), [normal(3, 4)]),
    "getitem_fancy": (lambda a: ops.getitem(a, (slice(None), np.array([0, 0, 3]))), [normal(3, 4)]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=1), [normal(2, 3), normal(2, 2)]),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), [normal(2, 3), normal(2, 3)]),
    "gather": (lambda a: ops.gather(a, np.array([2, 0, 2])), [normal(4, 3)]),
    "pad": (lambda a: ops.pad(a, ((0, 0), (1, 2))), [normal(2, 3)]),
    "relu": (ops.relu, [normal(4, 5)]),
    "sigmoid": (ops.sigmoid, [normal(4, 5)]),
    "tanh": (ops.tanh, [normal(4, 5)]),
    "softmax": (ops.softmax, [normal(4, 5)]),
    "log_softmax": (ops.log_softmax, [normal(4, 5)]),
    "elu": (ops.elu, [normal(4, 5)]),
    "selu": (ops.selu, [normal(4, 5)]),
    "softplus": (ops.softplus, [normal(4, 5)]),
    "gelu": (ops.gelu, [normal(4, 5)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient_matches_finite_differences(name):
    fn, arrays = CASES[name]
    check_gradients(fn, *arrays)


def test_batch_dot_reference_numbers():
    out = ops.batch_dot(np.array([[1., 2], [3, 4]]), np.array([[5., 6], [7, 8]]), axes=1)
    np.testing.assert_array_equal(out.data, [[17.], [53.]])


def test_max_ties_share_gradient():
    from graphspec.autodiff import Variable, backward, recording
    with recording():
        x = Variable(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)
        backward(ops.sum_(ops.max_(x, axis=1)))
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5]])
