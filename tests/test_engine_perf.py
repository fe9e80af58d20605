import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.ops.linalg import linear


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_linear_gradients(relu, shape):
    rng = np.random.default_rng(0)
    check_gradients(lambda x, k, b: linear(x, k, b, relu=relu), rng.standard_normal(shape),
                    rng.standard_normal((4, 3)), rng.standard_normal(3))
    check_gradients(lambda x, k: linear(x, k, None, relu=relu), rng.standard_normal(shape),
                    rng.standard_normal((4, 3)))


def test_linear_keeps_float32():
    args = [np.ones(s, np.float32) for s in ((2, 4), (4, 3), (3,))]
    assert linear(*args, relu=True).data.dtype == np.float32


def test_second_backward_raises_unless_the_graph_is_retained():
    x = Variable(np.ones(3), requires_grad=True)
    with recording():
        y = ops.sum_(ops.mul(x, x))
    backward(y)
    with pytest.raises(RuntimeError, match="second time"):
        backward(y)
    x.grad = None
    with recording():
        y = ops.sum_(ops.mul(x, x))
    backward(y, retain_graph=True)
    backward(y)
    np.testing.assert_allclose(x.grad, 4 * np.ones(3))
