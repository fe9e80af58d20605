"""Core layers: finite-difference gradients (inputs and weights) and PyTorch equivalence."""
import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import ShapeError
from graphspec.initializers import initialize
from graphspec.layers import REGISTRY, CallContext
from graphspec.ops.activations import ACTIVATIONS

R = np.random.default_rng(0)


def make(type_name, input_shapes, dtype="float64", seed=0, **config):
    layer = REGISTRY[type_name](type_name.lower(), config)
    layer.compute_output_shapes([(None,) + tuple(s) for s in input_shapes])
    layer.register_weights([(None,) + tuple(s) for s in input_shapes])
    rng = np.random.default_rng(seed)
    layer.weights = {name: Variable(initialize(spec.initializer, spec.shape, rng, dtype)
                                    + (0.1 * rng.standard_normal(spec.shape)
                                       if spec.initializer == "zeros" else 0),
                                    requires_grad=True)
                     for name, spec in layer.weight_shapes.items()}
    return layer


def check_layer(layer, *arrays, training=False):
    """FD check w.r.t. every input and every weight of ``layer``."""
    names = list(layer.weights)

    def fn(*variables):
        inputs, weights = variables[:len(arrays)], variables[len(arrays):]
        saved = layer.weights
        layer.weights = dict(zip(names, weights))
        try:
            return layer.forward(list(inputs), CallContext(training=training,
                                                           rng=np.random.default_rng(0)))
        finally:
            layer.weights = saved
    check_gradients(fn, *arrays, *[layer.weights[n].data for n in names])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_dense_gradients_every_activation(activation):
    layer = make("Dense", [(4,)], units=3, activation=activation)
    check_layer(layer, R.standard_normal((5, 4)))


def test_dense_on_3d_input_and_no_bias():
    layer = make("Dense", [(2, 4)], units=3, use_bias=False)
    assert list(layer.weights) == ["kernel"]
    check_layer(layer, R.standard_normal((3, 2, 4)))


@pytest.mark.parametrize("type_name", ["Add", "Multiply", "Average", "Maximum", "Minimum"])
def test_elementwise_merges(type_name):
    layer = make(type_name, [(3,), (3,), (3,)])
    check_layer(layer, *(R.standard_normal((4, 3)) for _ in range(3)))


def test_subtract_and_broadcasting_shapes():
    layer = make("Subtract", [(3,), (1,)])
    assert layer.compute_output_shapes([(None, 3), (None, 1)]) == [(None, 3)]
    check_layer(layer, R.standard_normal((4, 3)), R.standard_normal((4, 1)))
    with pytest.raises(ShapeError, match="takes 2 input"):
        layer.compute_output_shapes([(None, 3)] * 3)


def test_concatenate_and_dot():
    concat = make("Concatenate", [(2, 3), (2, 5)], axis=-1)
    assert concat.compute_output_shapes([(None, 2, 3), (None, 2, 5)]) == [(None, 2, 8)]
    check_layer(concat, R.standard_normal((4, 2, 3)), R.standard_normal((4, 2, 5)))
    with pytest.raises(ShapeError, match="needs the other axes to match"):
        concat.compute_output_shapes([(None, 2, 3), (None, 3, 5)])
    dot = make("Dot", [(3,), (3,)], axes=1)
    assert dot.compute_output_shapes([(None, 3), (None, 3)]) == [(None, 1)]
    check_layer(dot, R.standard_normal((4, 3)), R.standard_normal((4, 3)))
    cosine = make("Dot", [(3,), (3,)], axes=1, normalize=True)
    check_layer(cosine, R.standard_normal((4, 3)), R.standard_normal((4, 3)))


def test_reshaping_layers():
    x = R.standard_normal((2, 3, 4))
    check_layer(make("Flatten", [(3, 4)]), x)
    reshape = make("Reshape", [(3, 4)], target_shape=[-1, 2])
    assert reshape.compute_output_shapes([(None, 3, 4)]) == [(None, 6, 2)]
    check_layer(reshape, x)
    with pytest.raises(ShapeError, match="cannot reshape"):
        reshape.config["target_shape"] = [5, 5]
        reshape.compute_output_shapes([(None, 3, 4)])
    permute = make("Permute", [(3, 4)], dims=[2, 1])
    assert permute.compute_output_shapes([(None, 3, 4)]) == [(None, 4, 3)]
    check_layer(permute, x)
    repeat = make("RepeatVector", [(4,)], n=3)
    assert repeat.compute_output_shapes([(None, 4)]) == [(None, 3, 4)]
    check_layer(repeat, R.standard_normal((2, 4)))


def test_activation_layer_and_time_distributed():
    check_layer(make("Activation", [(5,)], activation="softmax"), R.standard_normal((3, 5)))
    dense = make("Dense", [(4,)], units=2)
    wrapper = REGISTRY["TimeDistributed"]("td", {"layer": dense})
    assert wrapper.compute_output_shapes([(None, 6, 4)]) == [(None, 6, 2)]
    x = R.standard_normal((3, 6, 4))
    out = wrapper.forward([Variable(x)], CallContext())[0].data
    np.testing.assert_allclose(out, x @ dense.weights["kernel"].data + dense.weights["bias"].data)
    check_layer(dense, x.reshape(-1, 4))


torch = pytest.importorskip("torch")

TORCH_ACTIVATIONS = {
    "linear": lambda t: t, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
    "softmax": lambda t: torch.softmax(t, -1), "elu": torch.nn.functional.elu,
    "selu": torch.nn.functional.selu, "softplus": torch.nn.functional.softplus,
    "gelu": torch.nn.functional.gelu,
}


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-5), ("float32", 1e-4)])
@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
def test_dense_matches_torch_linear(activation, dtype, rtol):
    layer = make("Dense", [(6,)], dtype=dtype, units=4, activation=activation)
    x = R.standard_normal((5, 6)).astype(dtype)
    probe = R.standard_normal((5, 4)).astype(dtype)
    with recording():
        xv = Variable(x, requires_grad=True)
        out = layer.forward([xv], CallContext())[0]
        backward(out, probe)
    linear = torch.nn.Linear(6, 4).to(getattr(torch, dtype))
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(layer.weights["kernel"].data.T.copy()))
        linear.bias.copy_(torch.from_numpy(layer.weights["bias"].data))
    xt = torch.from_numpy(x).requires_grad_()
    yt = TORCH_ACTIVATIONS[activation](linear(xt))
    yt.backward(torch.from_numpy(probe))
    np.testing.assert_allclose(out.data, yt.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(xv.grad, xt.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(layer.weights["kernel"].grad, linear.weight.grad.numpy().T,
                               rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(layer.weights["bias"].grad, linear.bias.grad.numpy(),
                               rtol=rtol, atol=rtol * 1e-2)
