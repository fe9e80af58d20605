"""Built-in losses and regularizers: Keras numbers, finite differences, PyTorch."""
import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import InputError, SpecError
from graphspec.train import losses as L
from graphspec.train import regularizers as R

RNG = np.random.default_rng(7)
B, C = 4, 5


def probs(*shape, low=0.01, high=0.99):
    return RNG.uniform(low, high, shape)


def one_hot(ids, classes):
    return np.eye(classes)[ids]


def loss_and_grad(loss, y_true, y_pred, probe=None, dtype=np.float64):
    """Per-sample values and d(sum(values * probe))/d(y_pred) from the tape."""
    with recording():
        pred = Variable(np.array(y_pred, dtype=dtype), requires_grad=True)
        values = loss(y_true, pred)
        probe = np.ones(values.shape) if probe is None else probe
        backward(ops.sum_(ops.mul(values, Variable(probe.astype(dtype)))))
    return values.data, pred.grad


# -- exact numbers (Keras documentation examples and hand computations) -----------------

def test_keras_doc_examples():
    bce = L.binary_crossentropy(np.array([[0, 1], [0, 0]]), Variable(np.array(
        [[0.6, 0.4], [0.4, 0.6]], dtype=np.float32)))
    np.testing.assert_allclose(bce.data, [0.9162907, 0.7135582], rtol=1e-6)
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], dtype=np.float32)
    cce = L.categorical_crossentropy(np.array([[0, 1, 0], [0, 0, 1]]), Variable(y_pred))
    np.testing.assert_allclose(cce.data, [0.0512933, 2.3025851], rtol=1e-5)
    scce = L.sparse_categorical_crossentropy(np.array([1, 2]), Variable(y_pred))
    np.testing.assert_allclose(scce.data, [0.0512933, 2.3025851], rtol=1e-5)
    mse = L.mean_squared_error(np.array([[0., 1.], [0., 0.]]),
                               Variable(np.array([[1., 1.], [1., 0.]])))
    np.testing.assert_allclose(mse.data, [0.5, 0.5])
    mae = L.mean_absolute_error(np.array([[0., 1.], [0., 0.]]),
                                Variable(np.array([[1., 1.], [1., 0.]])))
    np.testing.assert_allclose(mae.data, [0.5, 0.5])


def test_binary_crossentropy_clips_like_keras():
    eps = 1e-7
    out = L.binary_crossentropy(np.array([[1.0, 0.0, 1.0]]),
                                Variable(np.array([[0.0, 1.0, 1.0]])))
    expected = (-np.log(eps) - np.log(1 - (1 - eps)) - np.log(1 - eps)) / 3
    np.testing.assert_allclose(out.data, [expected], rtol=1e-12)
    # no gradient where the clip bites (p = 0 and p = 1 are outside [eps, 1 - eps])
    _, grad = loss_and_grad(L.binary_crossentropy, np.array([[1.0, 0.0, 0.5]]),
                            np.array([[0.0, 1.0, 0.5]]))
    np.testing.assert_array_equal(grad[0, :2], [0.0, 0.0])
    assert grad[0, 2] == 0.0  # t = p = 0.5: -t/p + (1-t)/(1-p) = 0


def test_categorical_crossentropy_renormalises_and_clips():
    y_true = np.array([[0.0, 1.0, 0.0]])
    # unnormalised probabilities are divided by their sum first (Keras)
    out = L.categorical_crossentropy(y_true, Variable(np.array([[1.0, 2.0, 1.0]])))
    np.testing.assert_allclose(out.data, [-np.log(0.5)])
    out = L.categorical_crossentropy(y_true, Variable(np.array([[1.0, 0.0, 0.0]])))
    np.testing.assert_allclose(out.data, [-np.log(1e-7)])


def test_label_smoothing_numbers():
    y_true = np.array([[0.0, 1.0]])
    logits = np.array([[0.3, -1.2]])
    s = 0.2
    out = L.binary_crossentropy(y_true, Variable(logits), from_logits=True,
                                label_smoothing=s)
    t = y_true * (1 - s) + 0.5 * s
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(out.data, (-(t * np.log(p) + (1 - t) * np.log(1 - p))).mean(-1))
    out = L.categorical_crossentropy(y_true, Variable(logits), from_logits=True,
                                     label_smoothing=s)
    t = y_true * (1 - s) + s / 2
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(out.data, -(t * logp).sum(-1))


def test_reduce_loss_weighted_divides_by_batch_size():
    per_sample = Variable(np.array([1.0, 2.0, 3.0, 4.0]))
    assert float(L.reduce_loss(per_sample).data) == 2.5
    weighted = L.reduce_loss(per_sample, np.array([1.0, 0.0, 2.0, 0.5]))
    assert float(weighted.data) == pytest.approx((1 + 0 + 6 + 2) / 4)
    weighted = L.reduce_loss(per_sample, np.array([[1.0], [0.0], [2.0], [0.5]]))
    assert float(weighted.data) == pytest.approx(9 / 4)
    with pytest.raises(InputError, match="sample_weight"):
        L.reduce_loss(per_sample, np.ones(3))


def test_reduce_loss_gradient():
    w = np.array([1.0, 0.0, 2.0, 0.5])
    check_gradients(lambda p: L.reduce_loss(L.mean_squared_error(np.zeros((4, 3)), p), w),
                    RNG.standard_normal((4, 3)))


def test_higher_rank_outputs_average_the_middle_axes():
    y_true = RNG.standard_normal((2, 3, 4))
    y_pred = RNG.standard_normal((2, 3, 4))
    out = L.mean_squared_error(y_true, Variable(y_pred))
    np.testing.assert_allclose(out.data, ((y_pred - y_true) ** 2).mean(axis=(1, 2)))
    ids = RNG.integers(0, 4, (2, 3))
    out = L.sparse_categorical_crossentropy(ids, Variable(y_pred), from_logits=True)
    logp = y_pred - np.log(np.exp(y_pred).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, ids[..., None], -1)[..., 0]
    np.testing.assert_allclose(out.data, -picked.mean(axis=1))


def test_target_rank_is_adjusted_like_keras():
    pred = Variable(np.array([[0.2], [0.7]]))
    a = L.binary_crossentropy(np.array([0.0, 1.0]), pred).data
    b = L.binary_crossentropy(np.array([[0.0], [1.0]]), pred).data
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2,)
    a = L.sparse_categorical_crossentropy(np.array([[1], [0]]), Variable(probs(2, 3)))
    assert a.shape == (2,)


def test_float32_stays_float32():
    for name in ("mse", "mae", "binary_crossentropy", "categorical_crossentropy"):
        out = L.get_loss(name)(probs(3, 4).astype(np.float32),
                               Variable(probs(3, 4).astype(np.float32)))
        assert out.dtype == np.float32, name
    out = L.get_loss({"name": "sparse_categorical_crossentropy", "from_logits": True})(
        np.array([0, 1, 2]), Variable(probs(3, 4).astype(np.float32)))
    assert out.dtype == np.float32


def test_logits_are_numerically_stable():
    big = np.array([[1000.0, -1000.0, 0.0]])
    out = L.binary_crossentropy(np.array([[0.0, 1.0, 1.0]]), Variable(big), from_logits=True)
    np.testing.assert_allclose(out.data, [(1000 + 1000 + np.log(2)) / 3])
    values, grad = loss_and_grad(lambda t, p: L.categorical_crossentropy(
        t, p, from_logits=True), np.array([[0.0, 1.0, 0.0]]), big)
    np.testing.assert_allclose(values, [2000.0])
    assert np.all(np.isfinite(grad))


# -- finite differences (float64) -------------------------------------------------------

FD_CASES = {
    "mse": (L.mean_squared_error, {}, RNG.standard_normal((B, C)),
            RNG.standard_normal((B, C))),
    "mse_3d": (L.mean_squared_error, {}, RNG.standard_normal((2, 3, C)),
               RNG.standard_normal((2, 3, C))),
    "mae": (L.mean_absolute_error, {}, RNG.standard_normal((B, C)),
            RNG.standard_normal((B, C))),
    "bce": (L.binary_crossentropy, {}, RNG.uniform(0, 1, (B, C)), probs(B, C)),
    "bce_smooth": (L.binary_crossentropy, {"label_smoothing": 0.1},
                   RNG.integers(0, 2, (B, C)), probs(B, C)),
    "bce_logits": (L.binary_crossentropy, {"from_logits": True},
                   RNG.uniform(0, 1, (B, C)), 3 * RNG.standard_normal((B, C))),
    "bce_column": (L.binary_crossentropy, {}, RNG.integers(0, 2, (B,)), probs(B, 1)),
    "cce": (L.categorical_crossentropy, {}, one_hot(RNG.integers(0, C, B), C),
            probs(B, C, low=0.1, high=2.0)),
    "cce_soft_targets": (L.categorical_crossentropy, {"label_smoothing": 0.2},
                         probs(B, C), probs(B, C, low=0.1, high=2.0)),
    "cce_logits": (L.categorical_crossentropy, {"from_logits": True}, probs(B, C),
                   2 * RNG.standard_normal((B, C))),
    "cce_logits_smooth_3d": (L.categorical_crossentropy,
                             {"from_logits": True, "label_smoothing": 0.3},
                             one_hot(RNG.integers(0, C, (2, 3)), C),
                             RNG.standard_normal((2, 3, C))),
    "scce": (L.sparse_categorical_crossentropy, {}, RNG.integers(0, C, B),
             probs(B, C, low=0.1, high=2.0)),
    "scce_logits": (L.sparse_categorical_crossentropy, {"from_logits": True},
                    RNG.integers(0, C, (B, 1)), 2 * RNG.standard_normal((B, C))),
}


@pytest.mark.parametrize("case", sorted(FD_CASES))
def test_finite_differences(case):
    fn, kwargs, y_true, y_pred = FD_CASES[case]
    if case == "mae":  # keep |y_pred - y_true| away from the kink at 0
        y_pred = y_true + np.sign(y_pred - y_true) * (0.1 + np.abs(y_pred - y_true))
    check_gradients(lambda p: fn(y_true, p, **kwargs), y_pred)


def test_gradient_flows_to_y_pred_only():
    with recording():
        t = Variable(probs(B, C), requires_grad=True)
        p = Variable(probs(B, C), requires_grad=True)
        backward(L.reduce_loss(L.mean_squared_error(t, p)))
    assert t.grad is None and p.grad is not None


# -- PyTorch equivalence ------------------------------------------------------------------

def _torch_cases(torch):
    F = torch.nn.functional
    ids = RNG.integers(0, C, B)
    soft = probs(B, C)
    soft = soft / soft.sum(-1, keepdims=True)
    binary = RNG.integers(0, 2, (B, C)).astype(np.float64)
    return {
        "mse": (L.get_loss("mse"), binary, RNG.standard_normal((B, C)),
                lambda t, p: F.mse_loss(p, t, reduction="none").mean(-1)),
        "mae": (L.get_loss("mae"), binary, RNG.standard_normal((B, C)),
                lambda t, p: F.l1_loss(p, t, reduction="none").mean(-1)),
        "bce": (L.get_loss("binary_crossentropy"), binary, probs(B, C),
                lambda t, p: F.binary_cross_entropy(p, t, reduction="none").mean(-1)),
        "bce_soft": (L.get_loss("binary_crossentropy"), probs(B, C), probs(B, C),
                     lambda t, p: F.binary_cross_entropy(p, t, reduction="none").mean(-1)),
        "bce_logits": (L.get_loss({"name": "binary_crossentropy", "from_logits": True}),
                       binary, 4 * RNG.standard_normal((B, C)),
                       lambda t, p: F.binary_cross_entropy_with_logits(
                           p, t, reduction="none").mean(-1)),
        "cce_logits": (L.get_loss({"name": "categorical_crossentropy", "from_logits": True}),
                       soft, 2 * RNG.standard_normal((B, C)),
                       lambda t, p: F.cross_entropy(p, t, reduction="none")),
        "cce_logits_smooth": (L.get_loss({"name": "categorical_crossentropy",
                                          "from_logits": True, "label_smoothing": 0.1}),
                              one_hot(ids, C), 2 * RNG.standard_normal((B, C)),
                              lambda t, p: F.cross_entropy(p, t, reduction="none",
                                                           label_smoothing=0.1)),
        # probabilities: Keras renormalises p / sum(p); torch: cross_entropy of log(q)
        # (log_softmax(log q) == log q for a normalised q)
        "cce_probs": (L.get_loss("categorical_crossentropy"), one_hot(ids, C),
                      probs(B, C, low=0.1, high=2.0),
                      lambda t, p: F.cross_entropy(torch.log(p / p.sum(-1, keepdim=True)),
                                                   t, reduction="none")),
        "scce_logits": (L.get_loss({"name": "sparse_categorical_crossentropy",
                                    "from_logits": True}),
                        ids, 2 * RNG.standard_normal((B, C)),
                        lambda t, p: F.cross_entropy(p, t.long(), reduction="none")),
        "scce_probs": (L.get_loss("sparse_categorical_crossentropy"), ids[:, None],
                       probs(B, C, low=0.1, high=2.0),
                       lambda t, p: F.nll_loss(torch.log(p / p.sum(-1, keepdim=True)),
                                               t[:, 0].long(), reduction="none")),
    }


TORCH_CASES = ["mse", "mae", "bce", "bce_soft", "bce_logits", "cce_logits",
               "cce_logits_smooth", "cce_probs", "scce_logits", "scce_probs"]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-5), (np.float32, 1e-4)])
@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch(case, dtype, rtol):
    torch = pytest.importorskip("torch")
    loss, y_true, y_pred, reference = _torch_cases(torch)[case]
    if case == "mae":
        y_pred = y_true + np.sign(y_pred - y_true) * (0.1 + np.abs(y_pred - y_true))
    probe = RNG.standard_normal(B)
    values, grad = loss_and_grad(loss, y_true, y_pred, probe, dtype=dtype)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    p = torch.tensor(y_pred, dtype=tdtype, requires_grad=True)
    t = torch.tensor(y_true, dtype=tdtype)
    expected = reference(t, p)
    (expected * torch.tensor(probe, dtype=tdtype)).sum().backward()
    assert values.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(values, expected.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)


# -- the registry ---------------------------------------------------------------------------

def test_aliases_and_configs():
    assert L.get_loss("mse").name == "mean_squared_error"
    assert L.get_loss("MAE").name == "mean_absolute_error"
    assert L.get_loss("CategoricalCrossentropy").name == "categorical_crossentropy"
    for alias in ("mse", "mean_squared_error", "mae", "mean_absolute_error",
                  "binary_crossentropy", "categorical_crossentropy",
                  "sparse_categorical_crossentropy"):
        assert alias in L.LOSSES
    loss = L.get_loss({"name": "categorical_crossentropy", "from_logits": True})
    assert loss.config == {"from_logits": True, "label_smoothing": 0.0}
    assert L.get_loss(loss) is loss


def test_loss_config_errors():
    with pytest.raises(SpecError, match="unknown loss 'hinge'"):
        L.get_loss("hinge")
    with pytest.raises(SpecError, match="no argument 'from_logits'"):
        L.get_loss({"name": "mse", "from_logits": True})
    with pytest.raises(SpecError, match="no argument 'label_smoothing'"):
        L.get_loss({"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1})
    with pytest.raises(SpecError, match="label_smoothing"):
        L.get_loss({"name": "binary_crossentropy", "label_smoothing": 2})
    with pytest.raises(SpecError, match="needs a 'name'"):
        L.get_loss({"from_logits": True})
    with pytest.raises(SpecError):
        L.get_loss(3)


def test_loss_schema_validates_configs():
    jsonschema = pytest.importorskip("jsonschema")
    for good in ("mse", {"name": "categorical_crossentropy", "from_logits": True},
                 {"name": "BinaryCrossentropy", "label_smoothing": 0.1}):
        jsonschema.validate(good, L.LOSS_SCHEMA)
    for bad in ("hinge", {"name": "mse", "from_logits": True},
                {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, L.LOSS_SCHEMA)


def test_input_errors():
    with pytest.raises(InputError, match="do not match"):
        L.mean_squared_error(np.zeros((3, 2)), Variable(np.zeros((3, 4))))
    with pytest.raises(InputError, match=r"in \[0, 3\)"):
        L.sparse_categorical_crossentropy(np.array([0, 3]), Variable(probs(2, 3)))
    with pytest.raises(InputError, match="integer class ids"):
        L.sparse_categorical_crossentropy(np.array([0.5, 1.0]), Variable(probs(2, 3)))
    with pytest.raises(InputError, match="shape"):
        L.sparse_categorical_crossentropy(np.array([0, 1, 2]), Variable(probs(2, 3)))
    # float-typed integer ids are accepted, as Keras casts them
    L.sparse_categorical_crossentropy(np.array([0.0, 2.0]), Variable(probs(2, 3)))


# -- regularizers ------------------------------------------------------------------------------

def test_regularizer_numbers():
    w = np.array([[1.0, -2.0], [0.0, 3.0]])
    assert float(R.penalty(Variable(w), l1=0.1).data) == pytest.approx(0.6)
    assert float(R.penalty(Variable(w), l2=0.01).data) == pytest.approx(0.14)
    assert float(R.penalty(Variable(w), 0.1, 0.01).data) == pytest.approx(0.74)
    assert float(R.l1(Variable(w)).data) == pytest.approx(0.06)      # Keras default 0.01
    assert float(R.l2(Variable(w)).data) == pytest.approx(0.14)
    assert float(R.get_regularizer({"l2": 0.5})(Variable(w)).data) == pytest.approx(7.0)
    assert R.get_regularizer(None) is None
    assert R.get_regularizer("l1").config == {"l1": 0.01, "l2": 0.0}
    assert R.get_regularizer("l1_l2").config == {"l1": 0.0, "l2": 0.0}  # Keras L1L2()
    out = R.penalty(Variable(w.astype(np.float32)), 0.1, 0.01)
    assert out.dtype == np.float32


def test_regularizer_gradient_exact_and_fd():
    w = np.array([[1.0, -2.0], [0.0, 3.0]])
    with recording():
        v = Variable(w.copy(), requires_grad=True)
        backward(R.penalty(v, l1=0.1, l2=0.01))
    np.testing.assert_allclose(v.grad, 0.1 * np.sign(w) + 0.02 * w)
    check_gradients(lambda x: R.penalty(x, 0.3, 0.2), RNG.standard_normal((3, 4)) + 0.05)
    check_gradients(lambda x: R.activity_penalty(x, {"l1": 0.1, "l2": 0.2}),
                    RNG.standard_normal((4, 3)) + 0.05)


def test_activity_penalty_divides_by_batch():
    x = np.array([[1.0, -1.0], [2.0, 0.0]])
    out = R.activity_penalty(Variable(x), {"l1": 1.0})
    assert float(out.data) == pytest.approx(4.0 / 2)
    assert R.activity_penalty(Variable(x), None) is None


def test_regularizer_errors():
    with pytest.raises(SpecError, match="only l1 and l2"):
        R.get_regularizer({"l3": 1})
    with pytest.raises(SpecError, match=">= 0"):
        R.get_regularizer({"l1": -1})
    with pytest.raises(SpecError, match="unknown regularizer"):
        R.get_regularizer("l3")
