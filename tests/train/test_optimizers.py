"""Optimizers: Keras update rules, against PyTorch and reference formulas; checkpoints."""
import io
import math

import numpy as np
import pytest

from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import InputError, SpecError
from graphspec.layers.base import CallContext
from graphspec.layers.dense import Dense
from graphspec.train import losses as L
from graphspec.train import optimizers as O

RNG = np.random.default_rng(3)
SHAPES = {"dense/kernel": (3, 4), "dense/bias": (4,)}
STEPS = 5


def initial():
    return {k: RNG.standard_normal(s) for k, s in SHAPES.items()}


def grad_sequence(scale=1.0):
    return [{k: scale * RNG.standard_normal(s) for k, s in SHAPES.items()}
            for _ in range(STEPS)]


def run_ours(opt, weights, grads):
    params = [(k, Variable(w.copy(), requires_grad=True)) for k, w in weights.items()]
    for step in grads:
        for key, var in params:
            var.grad = step[key].copy()
        opt.apply(params)
    return {k: v.data for k, v in params}


def run_torch(torch, make_opt, weights, grads, before_step=None, clip=None):
    params = {k: torch.tensor(w, dtype=torch.float64, requires_grad=True)
              for k, w in weights.items()}
    opt = make_opt(list(params.values()))
    for t, step in enumerate(grads, start=1):
        for key, p in params.items():
            p.grad = torch.tensor(step[key], dtype=torch.float64)
        if clip:
            clip(list(params.values()))
        if before_step:
            before_step(opt, t)
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


def assert_same(ours, theirs, start, rtol=1e-5):
    """Same weights, and the same total updates (weights - start): the updates are
    small next to the weights, so comparing them too keeps the check sharp."""
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, atol=1e-12,
                                   err_msg=key)
        np.testing.assert_allclose(ours[key] - start[key], theirs[key] - start[key],
                                   rtol=rtol, atol=1e-14, err_msg=f"update of {key}")


def adam_eps_for_torch(keras_eps, beta_2):
    """Keras' epsilon hat as PyTorch's epsilon at step t: eps_t = eps / sqrt(1 - b2^t).

    Keras: w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
    torch: w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps_t), which is the same
    update exactly when eps_t = eps / sqrt(1-b2^t). Set before every torch step.
    """
    def before_step(opt, t):
        for group in opt.param_groups:
            group["eps"] = keras_eps / math.sqrt(1 - beta_2 ** t)
    return before_step


# -- PyTorch equivalence (float64, 5 steps, varying gradients) ------------------------------

def test_sgd_plain_matches_torch():
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence()
    ours = run_ours(O.get_optimizer({"type": "sgd", "learning_rate": 0.1}), w, g)
    assert_same(ours, run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.1), w, g), w)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_torch(nesterov):
    # torch: v = mu*v + g; w -= lr*v. Keras: m = mu*m - lr*g; w += m. With a constant
    # learning rate m = -lr*v, so the two agree step by step (nesterov too:
    # torch w -= lr*(g + mu*v) == Keras w += mu*m - lr*g).
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence()
    ours = run_ours(O.SGD(learning_rate=0.05, momentum=0.9, nesterov=nesterov), w, g)
    theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9,
                                                        nesterov=nesterov), w, g)
    assert_same(ours, theirs, w)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprop_matches_torch_with_zero_epsilon(centered, momentum):
    # Keras puts epsilon INSIDE the square root (sqrt(v + eps)), torch outside
    # (sqrt(v) + eps): with epsilon = 0 the rules are identical (v > 0 here), and
    # torch's momentum buffer b = mu*b + g/den, w -= lr*b equals Keras' mom = mu*mom +
    # lr*g/den, w -= mom for a constant learning rate. The default epsilon is checked
    # against Keras' own formula below.
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence()
    ours = run_ours(O.RMSprop(learning_rate=0.01, rho=0.8, momentum=momentum, epsilon=0.0,
                              centered=centered), w, g)
    theirs = run_torch(torch, lambda p: torch.optim.RMSprop(
        p, lr=0.01, alpha=0.8, eps=0.0, momentum=momentum, centered=centered), w, g)
    assert_same(ours, theirs, w)


def test_rmsprop_default_epsilon_matches_keras_formula():
    w, g = initial(), grad_sequence(scale=1e-3)   # small gradients: epsilon matters
    opt = O.get_optimizer({"type": "rmsprop", "momentum": 0.3, "centered": True})
    ours = run_ours(opt, w, g)
    lr, rho, eps, mu = 0.001, 0.9, 1e-7, 0.3
    for key in w:
        x, v, a, mom = w[key].copy(), 0.0, 0.0, 0.0
        for step in g:
            grad = step[key]
            v = rho * v + (1 - rho) * grad ** 2
            a = rho * a + (1 - rho) * grad
            mom = mu * mom + lr * grad / np.sqrt(v - a ** 2 + eps)
            x = x - mom
        np.testing.assert_allclose(ours[key], x, rtol=1e-12)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_torch_with_converted_epsilon(amsgrad):
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence(scale=1e-3)   # small gradients: epsilon matters
    ours = run_ours(O.Adam(amsgrad=amsgrad), w, g)
    theirs = run_torch(torch, lambda p: torch.optim.Adam(p, lr=0.001, amsgrad=amsgrad), w,
                       g, before_step=adam_eps_for_torch(1e-7, 0.999))
    assert_same(ours, theirs, w)


def test_adam_matches_torch_with_zero_epsilon():
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence()
    opt = O.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=0.0)
    theirs = run_torch(torch, lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99),
                                                         eps=0.0), w, g)
    assert_same(run_ours(opt, w, g), theirs, w)


def test_adam_weight_decay_matches_torch_adamw():
    # Keras' weight_decay is decoupled (w -= w*wd*lr before the step), as in AdamW.
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence()
    opt = O.Adam(learning_rate=0.01, weight_decay=0.1)
    theirs = run_torch(torch, lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
                       w, g, before_step=adam_eps_for_torch(1e-7, 0.999))
    assert_same(run_ours(opt, w, g), theirs, w)


def test_clipnorm_matches_torch_per_parameter():
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence(scale=3.0)   # norms around 10: clipping bites

    def clip(params):
        for p in params:  # Keras' clipnorm clips every variable on its own
            torch.nn.utils.clip_grad_norm_([p], 1.5)
    ours = run_ours(O.SGD(learning_rate=0.1, clipnorm=1.5), w, g)
    theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.1), w, g, clip=clip)
    # torch divides by (norm + 1e-6): ~1e-7 relative with norms ~ 10
    assert_same(ours, theirs, w, rtol=1e-5)


def test_global_clipnorm_matches_torch():
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence(scale=3.0)
    ours = run_ours(O.SGD(learning_rate=0.1, global_clipnorm=2.0), w, g)
    theirs = run_torch(torch, lambda p: torch.optim.SGD(p, lr=0.1), w, g,
                       clip=lambda ps: torch.nn.utils.clip_grad_norm_(ps, 2.0))
    assert_same(ours, theirs, w, rtol=1e-5)


def test_clipvalue_matches_torch():
    torch = pytest.importorskip("torch")
    w, g = initial(), grad_sequence(scale=2.0)
    ours = run_ours(O.Adam(learning_rate=0.01, clipvalue=0.5, epsilon=0.0), w, g)
    theirs = run_torch(torch, lambda p: torch.optim.Adam(p, lr=0.01, eps=0.0), w, g,
                       clip=lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.5))
    assert_same(ours, theirs, w)


def test_clipping_numbers():
    opt = O.SGD(learning_rate=1.0, clipnorm=1.0)
    v = Variable(np.zeros(2), requires_grad=True)
    v.grad = np.array([3.0, 4.0])
    opt.apply([("v", v)])
    np.testing.assert_allclose(v.data, [-0.6, -0.8])
    v.grad = np.array([0.3, 0.4])            # below the norm: untouched
    opt.apply([("v", v)])
    np.testing.assert_allclose(v.data, [-0.9, -1.2])
    opt = O.SGD(learning_rate=1.0, global_clipnorm=5.0)
    a, b = Variable(np.zeros(1)), Variable(np.zeros(1))
    a.grad, b.grad = np.array([6.0]), np.array([8.0])   # global norm 10 -> scale 0.5
    opt.apply([("a", a), ("b", b)])
    np.testing.assert_allclose([a.data[0], b.data[0]], [-3.0, -4.0])
    a.grad, b.grad = np.zeros(1), np.zeros(1)           # zero norm: no NaN
    opt.apply([("a", a), ("b", b)])
    np.testing.assert_allclose([a.data[0], b.data[0]], [-3.0, -4.0])


# -- mechanics ---------------------------------------------------------------------------------

@pytest.mark.parametrize("config", ["sgd", {"type": "sgd", "momentum": 0.9, "nesterov": True},
                                    "rmsprop", {"type": "rmsprop", "momentum": 0.5,
                                                "centered": True},
                                    "adam", {"type": "adam", "amsgrad": True}])
def test_in_place_and_float32(config):
    opt = O.get_optimizer(config)
    data = RNG.standard_normal((3, 4)).astype(np.float32)
    var = Variable(data, requires_grad=True)
    before = data.copy()
    for _ in range(3):
        var.grad = RNG.standard_normal((3, 4)).astype(np.float32)
        opt.apply([("w", var)])
    assert var.data is data and data.dtype == np.float32
    assert not np.array_equal(before, data)
    assert all(s.dtype == np.float32 for s in opt.slots["w"].values())
    assert opt.iterations == 3


def test_variables_without_gradients_are_skipped():
    opt = O.Adam()
    a = Variable(np.ones(2), requires_grad=True)
    b = Variable(np.ones(2), requires_grad=True)
    a.grad = np.ones(2)
    opt.apply([("a", a), ("b", b)])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    assert "b" not in opt.slots and opt.iterations == 1
    opt.apply([("b", b)])                 # nothing to do: not a step
    assert opt.iterations == 1


def test_defaults_are_keras():
    assert O.get_optimizer("sgd").config["learning_rate"] == 0.01
    sgd = O.get_optimizer("SGD").config
    assert (sgd["momentum"], sgd["nesterov"]) == (0.0, False)
    rms = O.get_optimizer("rmsprop").config
    assert (rms["learning_rate"], rms["rho"], rms["momentum"], rms["epsilon"],
            rms["centered"]) == (0.001, 0.9, 0.0, 1e-7, False)
    adam = O.get_optimizer("Adam").config
    assert (adam["learning_rate"], adam["beta_1"], adam["beta_2"], adam["epsilon"],
            adam["amsgrad"]) == (0.001, 0.9, 0.999, 1e-7, False)


def test_state_dict_resume_equals_uninterrupted_run():
    w, g = initial(), grad_sequence()
    for config in ({"type": "adam", "amsgrad": True},
                   {"type": "rmsprop", "momentum": 0.5, "centered": True},
                   {"type": "sgd", "momentum": 0.9}):
        straight = run_ours(O.get_optimizer(config), w, g)
        first = O.get_optimizer(config)
        params = [(k, Variable(x.copy(), requires_grad=True)) for k, x in w.items()]
        for step in g[:3]:
            for key, var in params:
                var.grad = step[key].copy()
            first.apply(params)
        buffer = io.BytesIO()
        np.savez(buffer, **first.state_dict())
        buffer.seek(0)
        restored = dict(np.load(buffer))
        second = O.get_optimizer(config)
        second.load_state_dict({**restored, "dense/kernel": np.zeros(1)})  # weights ignored
        assert second.iterations == 3
        for step in g[3:]:
            for key, var in params:
                var.grad = step[key].copy()
            second.apply(params)
        for key, var in params:
            np.testing.assert_array_equal(var.data, straight[key])


def test_state_dict_keys():
    opt = O.Adam()
    v = Variable(np.zeros(2), requires_grad=True)
    v.grad = np.ones(2)
    opt.apply([("dense_1/kernel", v)])
    assert sorted(opt.state_dict()) == [
        "optimizer/adam/iterations", "optimizer/adam/learning_rate",
        "optimizer/dense_1/kernel/momentum", "optimizer/dense_1/kernel/velocity"]
    opt.learning_rate = 0.5   # e.g. lowered by a callback: restored like Keras
    other = O.Adam()
    other.load_state_dict(opt.state_dict())
    assert other.learning_rate == 0.5 and other.iterations == 1


def test_load_state_dict_errors():
    adam = O.Adam()
    with pytest.raises(InputError, match="saved by sgd"):
        adam.load_state_dict({"optimizer/sgd/iterations": np.array(1)})
    with pytest.raises(InputError, match="unexpected optimizer state"):
        adam.load_state_dict({"optimizer/adam/iterations": np.array(1),
                              "optimizer/w/average_gradient": np.zeros(2)})
    adam.load_state_dict({"optimizer/adam/iterations": np.array(1),
                          "optimizer/w/momentum": np.zeros(3),
                          "optimizer/w/velocity": np.zeros(3)})
    v = Variable(np.zeros(2), requires_grad=True)
    v.grad = np.ones(2)
    with pytest.raises(InputError, match="has shape"):
        adam.apply([("w", v)])


def test_config_errors():
    with pytest.raises(SpecError, match="unknown optimizer 'adagrad'"):
        O.get_optimizer("adagrad")
    with pytest.raises(SpecError, match="no argument"):
        O.get_optimizer({"type": "sgd", "beta_1": 0.9})
    with pytest.raises(SpecError, match="only one of"):
        O.get_optimizer({"type": "adam", "clipnorm": 1.0, "clipvalue": 1.0})
    with pytest.raises(SpecError, match="learning_rate must be >"):
        O.get_optimizer({"type": "adam", "learning_rate": 0})
    with pytest.raises(SpecError, match="true or false"):
        O.get_optimizer({"type": "sgd", "nesterov": 1})
    with pytest.raises(SpecError, match="momentum must be <="):
        O.get_optimizer({"type": "sgd", "momentum": 1.5})
    with pytest.raises(SpecError, match="needs a 'type'"):
        O.get_optimizer({"learning_rate": 0.1})


def test_optimizer_schema():
    jsonschema = pytest.importorskip("jsonschema")
    for good in ("adam", {"type": "adam", "learning_rate": 0.01, "amsgrad": True},
                 {"type": "sgd", "momentum": 0.9, "nesterov": True, "clipnorm": 1.0},
                 {"type": "rmsprop", "rho": 0.95, "centered": True, "clipvalue": None}):
        jsonschema.validate(good, O.OPTIMIZER_SCHEMA)
        O.get_optimizer(good)
    for bad in ("adagrad", {"type": "sgd", "beta_1": 0.9}, {"type": "adam", "epsilon": -1},
                {"type": "rmsprop", "centered": "yes"}, {"learning_rate": 0.1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, O.OPTIMIZER_SCHEMA)


# -- end to end: a 2-layer MLP in graphspec and in torch ----------------------------------

def _mlp_case(torch, loss_config, optimizer_config, make_torch_opt, torch_loss, targets,
              out_units, before_step=None, out_activation="linear"):
    x = RNG.standard_normal((6, 4))
    k1, b1 = RNG.standard_normal((4, 5)) * 0.5, RNG.standard_normal(5) * 0.1
    k2, b2 = RNG.standard_normal((5, out_units)) * 0.5, RNG.standard_normal(out_units) * 0.1
    d1 = Dense("d1", {"units": 5, "activation": "tanh"})
    d2 = Dense("d2", {"units": out_units, "activation": out_activation})
    for layer, (k, b) in ((d1, (k1, b1)), (d2, (k2, b2))):
        layer.weights = {"kernel": Variable(k.copy(), requires_grad=True),
                         "bias": Variable(b.copy(), requires_grad=True)}
    params = [(f"{layer.name}/{n}", layer.weights[n]) for layer in (d1, d2)
              for n in ("kernel", "bias")]
    loss_fn, opt = L.get_loss(loss_config), O.get_optimizer(optimizer_config)

    tw = [torch.tensor(a.copy(), requires_grad=True) for a in (k1, b1, k2, b2)]
    topt = make_torch_opt(tw)
    tx = torch.tensor(x)
    acts = {"linear": lambda z: z, "sigmoid": torch.sigmoid}

    for step in range(1, STEPS + 1):
        ctx = CallContext(training=True)
        for _, var in params:
            var.grad = None
        with recording():
            out = d2.forward(d1.forward([Variable(x)], ctx), ctx)[0]
            loss = L.reduce_loss(loss_fn(targets, out))
            backward(loss)
        ours_grads = [var.grad.copy() for _, var in params]
        opt.apply(params)

        topt.zero_grad()
        hidden = torch.tanh(tx @ tw[0] + tw[1])
        tloss = torch_loss(acts[out_activation](hidden @ tw[2] + tw[3]))
        tloss.backward()
        if before_step:
            before_step(topt, step)
        their_grads = [p.grad.numpy().copy() for p in tw]
        topt.step()

        np.testing.assert_allclose(float(loss.data), tloss.item(), rtol=1e-10)
        for ours_g, their_g in zip(ours_grads, their_grads):
            np.testing.assert_allclose(ours_g, their_g, rtol=1e-8, atol=1e-12)
        for (_, var), p, start in zip(params, tw, (k1, b1, k2, b2)):
            np.testing.assert_allclose(var.data, p.detach().numpy(), rtol=1e-5, atol=1e-12)
            np.testing.assert_allclose(var.data - start, p.detach().numpy() - start,
                                       rtol=1e-5, atol=1e-14)


def test_mlp_sparse_crossentropy_adam_matches_torch():
    torch = pytest.importorskip("torch")
    ids = RNG.integers(0, 3, 6)
    _mlp_case(torch, {"name": "sparse_categorical_crossentropy", "from_logits": True},
              {"type": "adam", "learning_rate": 0.05},
              lambda p: torch.optim.Adam(p, lr=0.05),
              lambda logits: torch.nn.functional.cross_entropy(logits, torch.tensor(ids)),
              ids, 3, before_step=adam_eps_for_torch(1e-7, 0.999))


def test_mlp_binary_crossentropy_sgd_nesterov_matches_torch():
    torch = pytest.importorskip("torch")
    y = RNG.integers(0, 2, (6, 1)).astype(np.float64)
    _mlp_case(torch, "binary_crossentropy",
              {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
              lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
              lambda prob: torch.nn.functional.binary_cross_entropy(prob, torch.tensor(y)),
              y, 1, out_activation="sigmoid")


def test_mlp_mse_rmsprop_matches_torch():
    torch = pytest.importorskip("torch")
    y = RNG.standard_normal((6, 2))
    _mlp_case(torch, "mse", {"type": "rmsprop", "learning_rate": 0.01, "epsilon": 0.0},
              lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0),
              lambda out: torch.nn.functional.mse_loss(out, torch.tensor(y)),
              y, 2)
