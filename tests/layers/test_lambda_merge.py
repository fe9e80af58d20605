"""Lambda and Merge layers: reference items 2, 11-14, gradients of every function."""
import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import ShapeError
from graphspec.expr import FUNCTIONS, ExprError, parse_expression
from graphspec.layers.base import CallContext
from graphspec.layers.dense import Dense
from graphspec.layers.lambda_layer import Lambda
from graphspec.layers.merge import Merge


def call(layer, *arrays, seed=0):
    inputs = [a if isinstance(a, Variable) else Variable(np.asarray(a)) for a in arrays]
    return layer.forward(inputs, CallContext(rng=np.random.default_rng(seed)))[0]


# -- reference item 11: batch axis included --------------------------------------------
def test_slice_first_five_features_keeps_batch_axis():
    layer = Lambda("first5", {"expr": "x[:, :5]"})
    assert layer.compute_output_shapes([(None, 10)]) == [(None, 5)]
    x = np.arange(30, dtype=np.float32).reshape(3, 10)
    out = call(layer, x)
    np.testing.assert_array_equal(out.data, x[:, :5])
    assert out.dtype == np.float32


@pytest.mark.parametrize("expr", ["x[:5]", "x[0]", "x[:10]", "sum(x, axis=0)",
                                  "random_normal((2, 10))"])
def test_forgetting_the_batch_axis_is_a_shape_error(expr):
    with pytest.raises(ShapeError, match=r"written with the batch axis included "
                                         r"\(x\[:, :5\], not x\[:5\]\)"):
        Lambda("bad", {"expr": expr}).compute_output_shapes([(None, 10)])


def test_split_a_10_vector_into_halves_each_into_its_own_dense():
    rng = np.random.default_rng(1)
    left, right = Lambda("left", {"expr": "x[:, :5]"}), Lambda("right", {"expr": "x[:, 5:]"})
    dense_l, dense_r = Dense("dl", {"units": 10}), Dense("dr", {"units": 10})
    weights = {}
    for dense, half in ((dense_l, left), (dense_r, right)):
        (shape,) = half.compute_output_shapes([(None, 10)])
        assert shape == (None, 5)
        assert dense.compute_output_shapes([shape]) == [(None, 10)]
        for spec in dense.weight_specs([shape]):
            weights[dense.name, spec.name] = rng.standard_normal(spec.shape)
            dense.weights[spec.name] = Variable(weights[dense.name, spec.name])
    x = rng.standard_normal((4, 10))
    out_l = dense_l.forward([call(left, x)], CallContext())[0]
    out_r = dense_r.forward([call(right, x)], CallContext())[0]
    for out, half, name in ((out_l, x[:, :5], "dl"), (out_r, x[:, 5:], "dr")):
        assert out.shape == (4, 10)
        np.testing.assert_allclose(out.data, half @ weights[name, "kernel"] + weights[name, "bias"])


# -- reference item 2: a shared "times 10" and a noise source ----------------------------
def test_times10_predicts_0_to_990():
    times10 = Lambda("times10", {"expr": "x * 10"})
    assert times10.compute_output_shapes([(None, 10)]) == [(None, 10)]
    out = call(times10, np.arange(100, dtype=np.float32).reshape(10, 10))
    np.testing.assert_array_equal(out.data.ravel(), np.arange(0, 1000, 10))


def test_noise_layer_ignores_its_input_and_is_seeded():
    noise = Lambda("noise", {"expr": "random_normal([batch, 10])"})
    assert noise.compute_output_shapes([(None, 1)]) == [(None, 10)]
    dummy = np.zeros((6, 1), dtype=np.float32)
    a, b, c = call(noise, dummy, seed=3), call(noise, dummy, seed=3), call(noise, dummy, seed=4)
    assert a.shape == (6, 10) and a.dtype == np.float32
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.data, np.random.default_rng(3).standard_normal((6, 10))
                                  .astype(np.float32))
    assert not np.allclose(a.data, c.data)
    assert call(noise, dummy.astype(np.float64)).dtype == np.float64


def test_shape_inference_does_not_advance_the_model_rng():
    ctx = CallContext(rng=np.random.default_rng(5))
    layer = Lambda("noise", {"expr": "x + random_normal(shape(x))"})
    layer.compute_output_shapes([(None, 3)])
    out = layer.forward([Variable(np.zeros((2, 3)))], ctx)[0]
    np.testing.assert_array_equal(out.data, np.random.default_rng(5).standard_normal((2, 3)))


# -- reference item 13: the op set, with numbers ------------------------------------------
X = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
REFERENCE = {
    "abs": ("abs(x)", [X], (None, 3), [[1, 2, 3], [4, 5, 6]]),
    "arith": ("(x + 1) * 2 - x / 2 + x ** 2 - -x", [X],
              (None, 3), (X + 1) * 2 - X / 2 + X ** 2 + X),
    "exp_log": ("log(exp(x))", [X], (None, 3), X),
    "sqrt_square": ("sqrt(square(x))", [X], (None, 3), np.abs(X)),
    "clip": ("clip(x, -1, 3.5)", [X], (None, 3), [[1, -1, 3], [3.5, 3.5, -1]]),
    "one_hot": ("one_hot(x, 4)", [[[0.0, 3.0], [2.0, 1.0]]], (None, 2, 4),
                [[[1, 0, 0, 0], [0, 0, 0, 1]], [[0, 0, 1, 0], [0, 1, 0, 0]]]),
    "permute_dimensions": ("permute_dimensions(x, (0, 2, 1))", [np.arange(12.).reshape(2, 2, 3)],
                           (None, 3, 2), np.arange(12.).reshape(2, 2, 3).transpose(0, 2, 1)),
    "expand_dims": ("expand_dims(x, 1)", [X], (None, 1, 3), X[:, None, :]),
    "expand_dims_default": ("expand_dims(x)", [X], (None, 3, 1), X[:, :, None]),
    "squeeze": ("squeeze(x, 1)", [X[:, None, :]], (None, 3), X),
    "gather_features": ("permute_dimensions(gather(permute_dimensions(x, (1, 0)), [2, 0, 2]), "
                        "(1, 0))", [X], (None, 3), [[3, 1, 3], [-6, 4, -6]]),
    "concatenate": ("concatenate([x, 2 * x], axis=-1)", [X], (None, 6), np.hstack([X, 2 * X])),
    "stack": ("stack([x, -x], axis=1)", [X], (None, 2, 3), np.stack([X, -X], 1)),
    "reshape": ("reshape(x, (batch, 3, 1))", [X], (None, 3, 1), X[:, :, None]),
    "sum_axis": ("sum(x, axis=1)", [X], (None,), [2, 3]),
    "sum_keepdims": ("sum(x, axis=-1, keepdims=True)", [X], (None, 1), [[2], [3]]),
    "mean_axis": ("mean(x, axis=1)", [X], (None,), [2 / 3, 1]),
    "max_axis": ("max(x, axis=1)", [X], (None,), [3, 5]),
    "min_axis": ("min(x, axis=-1, keepdims=True)", [X], (None, 1), [[-2], [-6]]),
    "maximum_minimum": ("maximum(x, 0) + minimum(x, 0)", [X], (None, 3), X),
    "dot_constant": ("dot(x, w)", [X], (None, 2), X @ np.array([[1, 0], [0, 1], [1, 1.]])),
    "matmul": ("x @ w", [X], (None, 2), X @ np.array([[1, 0], [0, 1], [1, 1.]])),
    "softmax": ("softmax(x)", [X], (None, 3),
                np.exp(X) / np.exp(X).sum(1, keepdims=True)),
    "relu_sign": ("relu(x) * sign(x)", [X], (None, 3), np.maximum(X, 0)),
    "slices": ("x[:, ::-1][:, 1:]", [X], (None, 2), X[:, ::-1][:, 1:]),
    "newaxis": ("x[:, None, :] * x[:, :, None]", [X], (None, 3, 3), X[:, None, :] * X[:, :, None]),
    "constants": ("x[:, :n] * c + pi", [X], (None, 2), X[:, :2] * np.array([10, 100]) + np.pi),
}
CONSTANTS = {"w": [[1, 0], [0, 1], [1, 1.0]], "n": 2, "c": [10, 100]}


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_reference_function_values_and_inferred_shapes(case):
    expr, arrays, shape, expected = REFERENCE[case]
    constants = {k: v for k, v in CONSTANTS.items() if k in parse_expression(
        expr, {"x", *CONSTANTS}).names}
    layer = Lambda(case, {"expr": expr, "constants": constants})
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    assert layer.compute_output_shapes([(None,) + a.shape[1:] for a in arrays]) == [shape]
    np.testing.assert_allclose(call(layer, *arrays).data, expected, rtol=1e-12, atol=1e-12)


def test_batch_dot_reference_numbers():
    for layer in (Lambda("bd", {"expr": "batch_dot(x[0], x[1], axes=1)"}),
                  Merge("bd", {"expr": "batch_dot(x[0], x[1], axes=1)"})):
        assert layer.compute_output_shapes([(None, 2), (None, 2)]) == [(None, 1)]
        out = call(layer, [[1.0, 2], [3, 4]], [[5.0, 6], [7, 8]])
        np.testing.assert_array_equal(out.data, [[17], [53]])


# -- reference item 14: a custom merge ------------------------------------------------------
def test_custom_merge_abs_sum():
    merge = Merge("absmerge", {"expr": "abs(x[0]) + abs(x[1])"})
    assert merge.compute_output_shapes([(None, 3), (None, 3)]) == [(None, 3)]
    out = call(merge, np.array([[-1.0, -2, 3]], np.float32), np.array([[4.0, -5, -6]], np.float32))
    np.testing.assert_array_equal(out.data, [[5, 7, 9]])
    assert out.dtype == np.float32


def test_merge_takes_two_or_more_inputs():
    merge = Merge("m", {"expr": "x[0] + x[1] + x[2]"})
    with pytest.raises(ShapeError, match="takes at least 2 input"):
        merge.compute_output_shapes([(None, 3)])
    assert merge.compute_output_shapes([(None, 3)] * 3) == [(None, 3)]
    with pytest.raises(ExprError, match=r"index 2 is out of range for a list of 2 tensors"):
        merge.compute_output_shapes([(None, 3)] * 2)
    assert Merge.TYPE == "Merge" and Merge.INPUTS == (2, None)


# -- reference item 12: output_shape ------------------------------------------------------
def test_output_shape_as_list_excludes_the_batch_axis():
    layer = Lambda("half", {"expr": "x[:, :5]", "output_shape": [5]})
    assert layer.compute_output_shapes([(None, 10)]) == [(None, 5)]
    assert Lambda("u", {"expr": "x", "output_shape": [None, 3]}).compute_output_shapes(
        [(None, 7, 3)]) == [(None, None, 3)]


def test_output_shape_as_expression_includes_the_batch_axis():
    layer = Lambda("half", {"expr": "x[:, :shape(x)[1] // 2]",
                            "output_shape": "(s[0], s[1] // 2)"})
    assert layer.compute_output_shapes([(None, 10)]) == [(None, 5)]
    assert layer.compute_output_shapes([(None, None)]) == [(None, None)]
    merge = Merge("cat", {"expr": "concatenate(x)",
                          "output_shape": "s[0][:1] + (s[0][1] + s[1][1],)"})
    assert merge.compute_output_shapes([(None, 2), (None, 5)]) == [(None, 7)]


def test_output_shape_expression_without_batch_axis_is_refused():
    layer = Lambda("half", {"expr": "x[:, :5]", "output_shape": "(s[1] // 2,)"})
    with pytest.raises(ShapeError, match=r"batch axis first, \(s\[0\], \.\.\.\); got \(5,\)"):
        layer.compute_output_shapes([(None, 10)])
    with pytest.raises(ShapeError, match="dimensions are integers"):
        Lambda("f", {"expr": "x", "output_shape": "(s[0], s[1] / 2)"}).compute_output_shapes(
            [(None, 10)])
    with pytest.raises(ExprError, match="output_shape: name 'x' is not allowed here"):
        Lambda("f", {"expr": "x", "output_shape": "shape(x)"})


def test_inference_with_unknown_feature_axes():
    assert Lambda("a", {"expr": "x * 2"}).compute_output_shapes([(None, None, 3)]) == \
        [(None, None, 3)]
    assert Lambda("b", {"expr": "sum(x, axis=1)"}).compute_output_shapes([(None, None, 3)]) == \
        [(None, 3)]
    assert Lambda("c", {"expr": "x[:, :2]"}).compute_output_shapes([(None, None)]) == \
        [(None, None)]  # 1 then 2 values: the size depends on the unknown axis
    with pytest.raises(ExprError, match=r"unknown input dimensions were taken as 1 and 3"):
        Lambda("d", {"expr": "x[:, 1]"}).compute_output_shapes([(None, None)])


def test_inference_refuses_huge_dummies_and_is_cached(monkeypatch):
    with pytest.raises(ShapeError, match=r"would run the expression on 20000000 values.*give "
                                         r"output_shape"):
        Lambda("big", {"expr": "x * 2"}).compute_output_shapes([(None, 10 ** 7)])
    layer = Lambda("cached", {"expr": "x[:, :5]"})
    runs = []
    original = Lambda._run_dummy
    monkeypatch.setattr(Lambda, "_run_dummy", lambda self, *a, **k: runs.append(a) or
                        original(self, *a, **k))
    for _ in range(3):
        assert layer.compute_output_shapes([(None, 10)]) == [(None, 5)]
    assert [batch for _, batch, _ in runs] == [2, 11]  # once; 11 > every feature size
    layer.compute_output_shapes([(None, 12)])
    assert len(runs) == 4


def test_bad_expressions_fail_at_construction_with_the_field():
    with pytest.raises(ExprError) as info:
        Lambda("evil", {"expr": "x.__class__"})
    assert info.value.field == "expr" and info.value.col == 1
    assert "Lambda layer 'evil' expr: attribute access (.__class__)" in str(info.value)
    with pytest.raises(ExprError, match="constant name 'sum' is taken"):
        Lambda("c", {"expr": "x", "constants": {"sum": 1}})
    for bad in ([1, "a"], [[1, 2], [3]], [True, False], [[None]]):
        with pytest.raises(ExprError, match="rectangular nested list of numbers"):
            Lambda("c", {"expr": "x", "constants": {"w": bad}})
    with pytest.raises(ExprError, match="must be a number or a nested list"):
        Lambda("c", {"expr": "x", "constants": {"w": "os"}})


def test_lambda_on_several_inputs_binds_a_list():
    layer = Lambda("pair", {"expr": "x[0] * inputs[1]"})
    assert layer.compute_output_shapes([(None, 2), (None, 2)]) == [(None, 2)]
    np.testing.assert_array_equal(call(layer, [[1.0, 2]], [[3.0, 4]]).data, [[3, 8]])
    with pytest.raises(ShapeError, match="must give one tensor"):
        Lambda("l", {"expr": "x"}).compute_output_shapes([(None, 2), (None, 2)])


def test_args_schema_shapes():
    assert Lambda.REQUIRED == ("expr",) and Lambda.INPUTS == (1, None)
    assert set(Lambda.ARGS) == {"expr", "output_shape", "constants"}
    assert Merge.ARGS is Lambda.ARGS


# -- gradients: every differentiable function, through the whole layer --------------------
R = np.random.default_rng(7)


def normal(*shape):
    return R.standard_normal(shape)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    return R.uniform(0.2, 1.5, shape) * R.choice([-1, 1], shape)


GRADIENTS = {  # name: (expr, arrays, wrt)
    "arith": ("(x * 3 - 1) / (2 + x ** 2) + -x + +x * pi / e + batch", [normal(3, 4)], None),
    "floordiv_mod": ("x % 0.7 + x // 0.5 * x", [normal(3, 4)], None),
    "pow_tensor": ("x[0] ** x[1]", [positive(3, 4), normal(3, 4)], None),
    "abs_sign": ("abs(x) * 2 + sign(x) * x", [away_from_zero(3, 4)], None),
    "exp_log_sqrt_square": ("exp(x) + log(x) + sqrt(x) + square(x)", [positive(3, 4)], None),
    "clip": ("clip(x, -0.5, 0.5)", [normal(4, 5)], None),
    "maximum_minimum": ("maximum(x[0], x[1]) + minimum(x[0], 0.1)",
                        [normal(3, 4), normal(3, 4)], None),
    "dot": ("dot(x, w)", [normal(3, 3)], None),
    "matmul": ("x[0] @ x[1][0]", [normal(3, 3), normal(3, 3)], None),
    "batch_dot": ("batch_dot(x[0], x[1], axes=1)", [normal(3, 4), normal(3, 4)], None),
    "batch_dot_3d": ("batch_dot(x[0], x[1], axes=(2, 1))",
                     [normal(2, 3, 4), normal(2, 4, 5)], None),
    "one_hot": ("one_hot(x[1], 4)[:, 0, :] * x[0]", [normal(3, 4), [[0], [3], [1]]], [0]),
    "permute_dimensions": ("permute_dimensions(x, (0, 2, 1)) * 2", [normal(2, 3, 4)], None),
    "expand_dims": ("expand_dims(x, 1) * 3", [normal(2, 3)], None),
    "squeeze": ("squeeze(x, 1) * x[:, 0, :]", [normal(2, 1, 3)], None),
    "gather": ("permute_dimensions(gather(permute_dimensions(x, (1, 0)), [2, 0, 2]), (1, 0))",
               [normal(3, 4)], None),
    "concatenate": ("concatenate([x[0], 2 * x[1]], axis=-1)", [normal(2, 3), normal(2, 2)], None),
    "stack": ("stack([x, square(x)], axis=1)", [normal(2, 3)], None),
    "reshape": ("reshape(x, (batch, 2, 3)) * reshape(x, (-1, 3, 2))[:, :2, :1]",
                [normal(3, 6)], None),
    "sum_mean": ("sum(x, axis=1) + mean(x, axis=1) + mean(x, axis=(1, 2), keepdims=True)[:, 0]",
                 [normal(3, 3, 2)], None),
    "max_min": ("max(x, axis=1) - min(x, axis=-1) + max(x) * min(x, axis=None)",
                [normal(3, 4)], None),
    "softmax": ("softmax(x)", [normal(3, 5)], None),
    "log_softmax": ("log_softmax(x, axis=1)", [normal(3, 4, 2)], None),
    "relu": ("relu(x)", [away_from_zero(3, 4)], None),
    "sigmoid_tanh_softplus": ("sigmoid(x) * tanh(x) + softplus(x)", [normal(3, 4)], None),
    "elu_selu_gelu": ("elu(x, alpha=0.5) + selu(x) * gelu(x)", [away_from_zero(3, 4)], None),
    "l2_normalize": ("l2_normalize(x, axis=-1)", [normal(3, 4)], None),
    "subscripts": ("x[:, 1:4:2] * x[:, ::-1][:, :2] + x[..., 0:1] - x[:, [0, 0, 3]][:, 1:]",
                   [normal(3, 5)], None),
    "newaxis": ("x[:, None, :] * x[:, :, None]", [normal(2, 3)], None),
    "random_reparameterisation": ("x * 2 + random_normal(shape(x), stddev=0.1) * x + "
                                  "random_uniform(shape(x), minval=-1, maxval=1)",
                                  [normal(3, 4)], None),
    "shape_driven": ("reshape(x, (shape(x)[0], -1))[:, :int_shape(x)[2]]",
                     [normal(2, 3, 2)], None),
}
# Functions whose gradient is zero or absent by definition: tested for values above.
NO_GRADIENT = {"sign", "one_hot", "random_normal", "random_uniform", "shape", "int_shape",
               "stop_gradient"}


@pytest.mark.parametrize("case", sorted(GRADIENTS))
def test_gradient_through_lambda_matches_finite_differences(case):
    expr, arrays, wrt = GRADIENTS[case]
    layer = Lambda(case, {"expr": expr, "constants": {"w": [[1.0, 2, 0], [0, 1, 3], [-1, 0, 1]]}})
    check_gradients(lambda *xs: call(layer, *xs), *arrays, wrt=wrt)


def test_every_function_is_gradient_checked():
    used = set()
    for expr, _, _ in GRADIENTS.values():
        used |= parse_expression(expr, {"x", "w"}).functions
    assert set(FUNCTIONS) - NO_GRADIENT <= used, set(FUNCTIONS) - NO_GRADIENT - used


def test_stop_gradient_blocks_the_gradient():
    layer = Lambda("sg", {"expr": "x * stop_gradient(x)"})
    with recording():
        x = Variable(np.array([[1.0, -2.0]]), requires_grad=True)
        backward(ops.sum_(call(layer, x)))
    np.testing.assert_array_equal(x.grad, [[1.0, -2.0]])


# -- PyTorch equivalence of composite expressions -----------------------------------------
TORCH_CASES = {
    "two_inputs": (
        "log_softmax(dot(x[0], w) + x[1], axis=-1) * sigmoid(x[1]) + "
        "batch_dot(x[0], x[0], axes=1) - mean(square(x[1]), axis=-1, keepdims=True) + "
        "elu(x[1], alpha=0.7) * softplus(x[1]) / (1 + abs(x[1]))",
        [(4, 3), (4, 5)],
        lambda t, F, x0, x1, w: (F.log_softmax(x0 @ w + x1, -1) * t.sigmoid(x1)
                                 + (x0 * x0).sum(1, keepdim=True)
                                 - (x1 ** 2).mean(-1, keepdim=True)
                                 + F.elu(x1, 0.7) * F.softplus(x1) / (1 + x1.abs()))),
    "reductions_and_activations": (
        "max(x, axis=1) + l2_normalize(x[:, 0, :], axis=-1) + gelu(x[:, 1]) + "
        "selu(tanh(x[:, 2])) + clip(x[:, 0], -0.5, 0.5) + relu(x[:, 1]) * sqrt(abs(x[:, 2]) + 1) "
        "+ softmax(permute_dimensions(x, (0, 2, 1)), axis=-1)[:, :, 0] + exp(min(x, axis=1))",
        [(4, 3, 5)],
        lambda t, F, x, w: (x.amax(1) + F.normalize(x[:, 0, :], dim=-1) + F.gelu(x[:, 1])
                            + F.selu(t.tanh(x[:, 2])) + x[:, 0].clamp(-0.5, 0.5)
                            + F.relu(x[:, 1]) * t.sqrt(x[:, 2].abs() + 1)
                            + F.softmax(x.permute(0, 2, 1), -1)[:, :, 0]
                            + t.exp(x.amin(1)))),
}
W = np.random.default_rng(3).standard_normal((3, 5))


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-5), (np.float32, 1e-4)])
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_pytorch_forward_and_gradients(case, dtype, rtol):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    expr, shapes, reference = TORCH_CASES[case]
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    layer = Lambda(case, {"expr": expr, "constants": {"w": W.tolist()}})
    with recording():
        ours_in = [Variable(a.copy(), requires_grad=True) for a in arrays]
        out = call(layer, *ours_in)
        probe = rng.standard_normal(out.shape).astype(dtype)
        backward(ops.sum_(ops.mul(out, Variable(probe))))
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = reference(torch, F, *theirs_in, torch.tensor(W.astype(dtype)))
    (expected * torch.tensor(probe)).sum().backward()
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=rtol, atol=rtol)
    for ours, theirs in zip(ours_in, theirs_in):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=rtol, atol=rtol)
