"""SimpleRNN/LSTM/GRU ``dropout`` and ``recurrent_dropout`` with Keras 3's semantics:
one mask per sequence (per gate once recurrent_dropout is on) reused at every step,
seeded through the run's generator, identity at inference.

Keras draws its masks from its own generator, so the checks are: (a) inference equals
Keras; (b) training with the generator fixed equals a plain numpy recurrence written
from Keras' cell code with the same masks; (c) over many independent masks (a batch of
one repeated sequence), the mean and spread of the outputs equal Keras' in training;
plus finite differences through the fused ops with fixed masks."""
import os

# Keras picks its backend when first imported: torch, the reference here
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec.autodiff import Variable
from graphspec.layers.base import CallContext
from graphspec.layers.gru import GRU
from graphspec.layers.lstm import LSTM
from graphspec.layers.simple_rnn import SimpleRNN
from graphspec.ops import recurrent

B, T, F, U = 2, 4, 3, 3
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
CLASSES = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}


def masks(kind, count, seed, batch=B, features=F, units=U):
    rng = np.random.default_rng(seed)
    g = GATES[kind] if count == "gates" else 1
    return (rng.choice([0.0, 1 / 0.7], (g, batch, features)),
            rng.choice([0.0, 1 / 0.8], (g, batch, units)))


OP_CASES = [
    ("SimpleRNN", {}, 1), ("SimpleRNN", {"go_backwards": True}, 1),
    ("LSTM", {}, 1), ("LSTM", {}, "gates"), ("LSTM", {"go_backwards": True}, "gates"),
    ("LSTM", {"recurrent_activation": "hard_sigmoid", "activation": "relu"}, "gates"),
    ("GRU", {}, 1), ("GRU", {}, "gates"), ("GRU", {"reset_after": False}, "gates"),
    ("GRU", {"reset_after": False}, 1),
    ("GRU", {"reset_after": False, "recurrent_activation": "hard_sigmoid"}, "gates"),
]


def op_of(kind, kwargs):
    return {"SimpleRNN": recurrent.simple_rnn, "LSTM": recurrent.lstm,
            "GRU": recurrent.gru}[kind], dict(kwargs)


def random_weights(kind, kwargs, seed=2, features=F, units=U):
    rng = np.random.default_rng(seed)
    g = GATES[kind]
    bias_shape = (2, g * units) if kind == "GRU" and kwargs.get("reset_after", True) \
        else (g * units,)
    return [rng.uniform(-0.7, 0.7, s) for s in
            ((features, g * units), (units, g * units), bias_shape)]


@pytest.mark.parametrize("kind,kwargs,count", OP_CASES)
def test_finite_differences_with_fixed_masks(kind, kwargs, count):
    op, kw = op_of(kind, kwargs)
    mx, mh = masks(kind, count, seed=3)
    x = np.random.default_rng(1).standard_normal((B, T, F))

    def fn(xv, k, rk, b):
        return op(xv, k, rk, b, input_mask=mx, recurrent_mask=mh, **kw)
    check_gradients(fn, x, *random_weights(kind, kwargs))


# -- (b) a plain numpy recurrence from Keras' cell code (implementation=1 layout) --------
def act(name, v):
    return {"tanh": np.tanh, "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
            "relu": lambda a: np.maximum(a, 0),
            "hard_sigmoid": lambda a: np.clip(a / 6 + 0.5, 0, 1)}[name](v)


def reference(kind, cfg, x, w, mx, mh):
    """Keras' cells step by step; a mask row k multiplies gate k's input (k = 0 when
    the mask is shared)."""
    kernel, rk, bias = w
    n = rk.shape[0]
    g = GATES[kind]
    if cfg.get("go_backwards"):
        x = x[:, ::-1]
    a, ra = cfg.get("activation", "tanh"), cfg.get("recurrent_activation", "sigmoid")
    h = np.zeros((x.shape[0], n))
    c = np.zeros_like(h)
    out = []

    def blk(m, k):
        return m[k if len(m) > 1 else 0]
    for t in range(x.shape[1]):
        xs = [x[:, t] * blk(mx, k) for k in range(g)]
        hs = [h * blk(mh, k) for k in range(g)]
        if kind == "SimpleRNN":
            h = act(a, xs[0] @ kernel + bias + hs[0] @ rk)
        elif kind == "LSTM":
            z = [xs[k] @ kernel[:, k * n:(k + 1) * n] + bias[k * n:(k + 1) * n]
                 + hs[k] @ rk[:, k * n:(k + 1) * n] for k in range(4)]
            i, f, o = act(ra, z[0]), act(ra, z[1]), act(ra, z[3])
            c = f * c + i * act(a, z[2])
            h = o * act(a, c)
        else:
            after = cfg.get("reset_after", True)
            b_in, b_rec = (bias[0], bias[1]) if after else (bias, np.zeros_like(bias))
            xz = [xs[k] @ kernel[:, k * n:(k + 1) * n] + b_in[k * n:(k + 1) * n]
                  for k in range(3)]
            rz = [hs[k] @ rk[:, k * n:(k + 1) * n] + b_rec[k * n:(k + 1) * n]
                  for k in range(2)]
            z, r = act(ra, xz[0] + rz[0]), act(ra, xz[1] + rz[1])
            if after:
                rh = r * (hs[2] @ rk[:, 2 * n:] + b_rec[2 * n:])
            else:
                rh = (r * hs[2]) @ rk[:, 2 * n:]
            hh = act(a, xz[2] + rh)
            h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, 1), h, c


LAYER_CASES = [
    ("SimpleRNN", {"dropout": 0.3}), ("SimpleRNN", {"recurrent_dropout": 0.4}),
    ("SimpleRNN", {"dropout": 0.3, "recurrent_dropout": 0.2, "go_backwards": True}),
    ("LSTM", {"dropout": 0.3}), ("LSTM", {"recurrent_dropout": 0.4}),
    ("LSTM", {"dropout": 0.3, "recurrent_dropout": 0.2, "go_backwards": True}),
    ("GRU", {"dropout": 0.3}), ("GRU", {"dropout": 0.3, "recurrent_dropout": 0.2}),
    ("GRU", {"dropout": 0.25, "recurrent_dropout": 0.5, "reset_after": False}),
]


def layer_of(kind, cfg, features=F, units=U, seed=2):
    layer = CLASSES[kind]("rnn", dict(cfg, units=units, return_sequences=True))
    layer.register_weights([(None, T, features)])
    w = random_weights(kind, cfg, seed, features, units)
    layer.weights = {k: Variable(v) for k, v in zip(("kernel", "recurrent_kernel", "bias"), w)}
    return layer, w


@pytest.mark.parametrize("kind,cfg", LAYER_CASES)
def test_training_equals_numpy_recurrence_with_the_same_masks(kind, cfg):
    layer, w = layer_of(kind, cfg)
    x = np.random.default_rng(1).standard_normal((5, T, F))
    got = layer.forward([Variable(x)], CallContext(training=True,
                                                   rng=np.random.default_rng(7)))[0].data
    mx, mh = layer.dropout_masks(x, CallContext(training=True, rng=np.random.default_rng(7)))
    count = GATES[kind] if cfg.get("recurrent_dropout") else 1
    for m, rate, width in ((mx, cfg.get("dropout", 0), F),
                           (mh, cfg.get("recurrent_dropout", 0), U)):
        if rate:
            assert m.shape == (count, 5, width)
            assert set(np.unique(m)) <= {0.0, 1 / (1 - rate)}
    ones = (np.ones((1, 5, F)), np.ones((1, 5, U)))
    want = reference(kind, cfg, x, w, mx if mx is not None else ones[0],
                     mh if mh is not None else ones[1])[0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # a different seed draws different masks; inference ignores them
    other = layer.forward([Variable(x)], CallContext(training=True,
                                                     rng=np.random.default_rng(8)))[0].data
    assert not np.allclose(other, got)
    inference = layer.forward([Variable(x)], CallContext(training=False))[0].data
    np.testing.assert_allclose(inference, reference(kind, cfg, x, w, *ones)[0], rtol=1e-12,
                               atol=1e-12)


def test_mask_rate_is_the_requested_fraction():
    layer, _ = layer_of("LSTM", {"dropout": 0.3, "recurrent_dropout": 0.6}, features=50,
                        units=40)
    mx, mh = layer.dropout_masks(np.zeros((200, T, 50)), CallContext(training=True))
    assert abs((mx == 0).mean() - 0.3) < 0.01 and abs((mh == 0).mean() - 0.6) < 0.01
    assert mx.shape == (4, 200, 50) and mh.shape == (4, 200, 40)
    assert not np.array_equal(mx[0], mx[1])               # one mask per gate


# -- (a) inference and (c) training statistics against Keras ------------------------------
def keras_layer(keras, kind, cfg, w, features=F, units=U):
    cls = getattr(keras.layers, kind)
    layer = cls(units, return_sequences=True, dtype="float64", **cfg)
    layer.build((None, T, features))
    for var, value in zip(layer.weights, w):
        var.assign(value)
    return layer


@pytest.mark.parametrize("kind,cfg", LAYER_CASES)
def test_inference_equals_keras(kind, cfg):
    keras = pytest.importorskip("keras")
    layer, w = layer_of(kind, cfg)
    x = np.random.default_rng(1).standard_normal((3, T, F))
    theirs = keras.ops.convert_to_numpy(keras_layer(keras, kind, cfg, w)(x, training=False))
    ours = layer.forward([Variable(x)], CallContext(training=False))[0].data
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)   # Keras runs float32


@pytest.mark.parametrize("kind,cfg", LAYER_CASES)
def test_training_statistics_equal_keras(kind, cfg):
    """A batch of N copies of one sequence: N independent masks. The per-unit mean and
    standard deviation of the outputs match Keras' training-mode outputs within their
    sampling error (and differ from inference, so the test can fail)."""
    keras = pytest.importorskip("keras")
    n = 6000
    layer, w = layer_of(kind, cfg)
    x = np.repeat(np.random.default_rng(1).standard_normal((1, T, F)), n, axis=0)
    theirs = np.asarray(keras.ops.convert_to_numpy(
        keras_layer(keras, kind, cfg, w)(x, training=True)))
    ours = layer.forward([Variable(x)], CallContext(training=True,
                                                    rng=np.random.default_rng(0)))[0].data
    err = np.sqrt(theirs.var(0) / n + ours.var(0) / n) + 1e-6     # Keras: float32
    assert np.all(np.abs(ours.mean(0) - theirs.mean(0)) < 5 * err)
    np.testing.assert_allclose(ours.std(0), theirs.std(0), rtol=0.08, atol=1e-3)
    assert ours.std(0).max() > 0.01                     # dropout did something


def test_linear_two_step_expectation_is_the_inference_output():
    """h_2 = (x_2 m) W + ((x_1 m) W + b) m_h U + b: independent masks of mean one, so
    its expectation is the inference output."""
    layer, w = layer_of("SimpleRNN", {"dropout": 0.4, "recurrent_dropout": 0.3,
                                      "activation": "linear"})
    n = 20000
    x = np.repeat(np.random.default_rng(1).standard_normal((1, 2, F)), n, axis=0)
    ours = layer.forward([Variable(x)], CallContext(training=True))[0].data[:, -1]
    inference = layer.forward([Variable(x[:1])], CallContext())[0].data[0, -1]
    se = ours.std(0) / np.sqrt(n)
    assert np.all(np.abs(ours.mean(0) - inference) < 5 * se)


def test_keras_import_keeps_dropout(tmp_path):
    keras = pytest.importorskip("keras")
    from graphspec.interop.keras_import import import_keras
    inp = keras.Input((T, F))
    h = keras.layers.LSTM(4, dropout=0.2, recurrent_dropout=0.1, return_sequences=True)(inp)
    out = keras.layers.GRU(3, dropout=0.3)(h)
    model = keras.Model(inp, out)
    path = tmp_path / "drop.keras"
    model.save(path)
    result = import_keras(str(path))
    specs = [v for v in result.spec["layers"].values() if v["type"] in ("LSTM", "GRU")]
    assert {(s["type"], s.get("dropout"), s.get("recurrent_dropout", 0.0))
            for s in specs} == {("LSTM", 0.2, 0.1), ("GRU", 0.3, 0.0)}


def test_dropout_exports_to_keras_and_onnx(tmp_path):
    """Keras gets the arguments back; ONNX (inference) computes the layer without them."""
    keras = pytest.importorskip("keras")
    from graphspec import api
    from graphspec.interop.keras_export import export_keras
    text = """\
graphspec: 1
layers:
  l: {type: LSTM, units: 4, dropout: 0.2, recurrent_dropout: 0.3, return_sequences: true}
  g: {type: GRU, units: 3, dropout: 0.1}
models:
  m:
    inputs: {x: {shape: [5, 3]}}
    calls:
      - {layer: l, in: x, out: h}
      - {layer: g, in: h, out: y}
    outputs: [y]
"""
    graph = api.loads(text, seed=0)
    path = tmp_path / "m.keras"
    export_keras(graph, path, "m")
    loaded = keras.saving.load_model(path)
    lstm = [layer for layer in loaded.layers if layer.name == "l"][0]
    assert (lstm.dropout, lstm.recurrent_dropout) == (0.2, 0.3)
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    want = graph.model("m").predict({"x": x})["y"]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    pytest.importorskip("onnxruntime")
    from graphspec.interop.onnx_check import run_onnxruntime
    from graphspec.interop.onnx_export import to_onnx
    got = run_onnxruntime(to_onnx(graph.model("m")), {"x": x})
    np.testing.assert_allclose(got["y"], want, rtol=1e-5, atol=1e-6)
