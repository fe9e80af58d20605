"""Embedding, SimpleRNN, LSTM, GRU and Bidirectional: finite differences (float64),
PyTorch equivalence of outputs and gradients (float64 and float32), shapes, errors."""
import numpy as np
import pytest
from gradcheck import check_gradients

from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import InputError, ShapeError
from graphspec.layers.base import CallContext
from graphspec.layers.bidirectional import Bidirectional
from graphspec.layers.dense import Dense
from graphspec.layers.embedding import Embedding
from graphspec.layers.gru import GRU
from graphspec.layers.lstm import LSTM, UnitForgetBias
from graphspec.layers.simple_rnn import SimpleRNN

B, T, F, U = 2, 4, 3, 3      # finite-difference sizes
TB, TT, TF, TU = 3, 5, 4, 6  # PyTorch comparison sizes
WEIGHT_ORDER = ("kernel", "recurrent_kernel", "bias")


def build(layer, input_shape, dtype=np.float64, seed=0):
    """Register and fill the layer's weights with random values (biases non-zero)."""
    rng = np.random.default_rng(seed)
    layer.register_weights([input_shape])
    layers = layer.sublayers() or [layer]
    for lyr in layers:
        lyr.weights = {name: Variable(rng.uniform(-0.6, 0.6, spec.shape).astype(dtype),
                                      requires_grad=True, name=f"{lyr.name}/{name}")
                       for name, spec in lyr.weight_shapes.items()}
    return layer


def weight_list(layer):
    """(layer, weight name) pairs in a fixed order, sublayers expanded."""
    out = []
    for lyr in layer.sublayers() or [layer]:
        out += [(lyr, n) for n in WEIGHT_ORDER + ("embeddings",) if n in lyr.weights]
    return out


def fd_check(layer, x, wrt_input=True):
    pairs = weight_list(layer)

    def fn(xv, *ws):
        for (lyr, name), w in zip(pairs, ws):
            lyr.weights[name] = w
        return layer.forward([xv], CallContext())
    arrays = [x] + [lyr.weights[name].data.copy() for lyr, name in pairs]
    wrt = range(0 if wrt_input else 1, len(arrays))
    check_gradients(fn, *arrays, wrt=wrt)


def seq_input(dtype=np.float64, shape=(B, T, F), seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- finite differences (float64) ------------------------------------------------------------

FLAGS = [dict(), dict(return_sequences=True), dict(return_state=True),
         dict(return_sequences=True, return_state=True, go_backwards=True),
         dict(go_backwards=True)]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "-".join(f) or "default")
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU], ids=lambda c: c.TYPE)
def test_recurrent_finite_differences(cls, flags):
    layer = build(cls("rnn", dict(units=U, **flags)), (None, T, F))
    fd_check(layer, seq_input())


@pytest.mark.parametrize("cls,config", [
    (SimpleRNN, dict(activation="relu", return_sequences=True)),
    (SimpleRNN, dict(use_bias=False, activation="softplus", return_sequences=True)),
    (LSTM, dict(use_bias=False, return_sequences=True, return_state=True)),
    (LSTM, dict(activation="elu", recurrent_activation="hard_sigmoid",
                return_sequences=True, return_state=True)),
    (LSTM, dict(activation="selu", recurrent_activation="tanh", return_sequences=True)),
    (GRU, dict(reset_after=False, return_sequences=True, return_state=True)),
    (GRU, dict(reset_after=False, go_backwards=True, return_sequences=True)),
    (GRU, dict(reset_after=False, use_bias=False, return_sequences=True)),
    (GRU, dict(use_bias=False, activation="linear", return_sequences=True)),
    (GRU, dict(recurrent_activation="hard_sigmoid", return_sequences=True)),
], ids=str)
def test_recurrent_variants_finite_differences(cls, config):
    layer = build(cls("rnn", dict(units=U, **config)), (None, T, F))
    fd_check(layer, seq_input())


def test_single_timestep_finite_differences():
    layer = build(LSTM("rnn", dict(units=U, return_state=True)), (None, 1, F))
    fd_check(layer, seq_input(shape=(B, 1, F)))


@pytest.mark.parametrize("inner_cls", [SimpleRNN, LSTM, GRU], ids=lambda c: c.TYPE)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_finite_differences(inner_cls, merge_mode):
    inner = inner_cls("rnn", dict(units=U, return_sequences=True, return_state=True))
    layer = build(Bidirectional("bi", dict(layer=inner, merge_mode=merge_mode)),
                  (None, T, F))
    fd_check(layer, seq_input())


def test_embedding_finite_differences():
    layer = build(Embedding("emb", dict(input_dim=5, output_dim=3)), (None, 6))
    idx = np.array([[0, 4, 4, 1, 2, 4], [3, 3, 0, 0, 1, 2]])
    fd_check(layer, idx, wrt_input=False)


# -- PyTorch equivalence ---------------------------------------------------------------------

def our_outputs_and_grads(layer, x, probes):
    """Forward, then backward of sum(out * probe); returns outputs, dx, weight grads."""
    pairs = weight_list(layer)
    for lyr, name in pairs:
        lyr.weights[name].grad = None
    with recording():
        xv = Variable(x.copy(), requires_grad=True)
        outs = layer.forward([xv], CallContext())
        total = None
        for o, p in zip(outs, probes):
            term = ops.sum_(ops.mul(o, Variable(p.astype(x.dtype))))
            total = term if total is None else ops.add(total, term)
        backward(total)
    grads = {f"{lyr.name}/{name}": lyr.weights[name].grad for lyr, name in pairs}
    return [o.data for o in outs], xv.grad, grads


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))


TOL = {np.float64: 1e-5, np.float32: 1e-4}
ERRORS = {}   # layer -> largest relative error seen (printed by the report test)


def compare(kind, dtype, pairs):
    worst = max(rel_err(g, w) for g, w in pairs)
    key = f"{kind} {dtype.__name__}"
    ERRORS[key] = max(ERRORS.get(key, 0.0), worst)
    assert worst <= TOL[dtype], f"{kind} {dtype.__name__}: relative error {worst:.2e}"


def paired(ours, theirs):
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    return list(zip(ours, theirs))


def torch_run(module_outputs, x_t, probes):
    torch = pytest.importorskip("torch")
    total = sum((o * torch.from_numpy(p)).sum() for o, p in zip(module_outputs, probes))
    total.backward()
    return [o.detach().numpy() for o in module_outputs], x_t.grad.numpy()


def gru_to_torch(block, u):
    """Keras [z, r, h] -> PyTorch [r, z, n] along the last axis."""
    return np.concatenate([block[..., u:2 * u], block[..., :u], block[..., 2 * u:]], -1)


gru_from_torch = gru_to_torch   # swapping the first two blocks is its own inverse


def set_torch_params(torch, module, params):
    with torch.no_grad():
        for name, value in params.items():
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))


DTYPES = [np.float64, np.float32]


def probes_for(shapes, dtype, seed=7):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_lstm_matches_torch(dtype, go_backwards):
    torch = pytest.importorskip("torch")
    layer = build(LSTM("lstm", dict(units=TU, return_sequences=True, return_state=True,
                                    go_backwards=go_backwards)), (None, TT, TF), dtype)
    x = seq_input(dtype, (TB, TT, TF))
    probes = probes_for([(TB, TT, TU), (TB, TU), (TB, TU)], dtype)
    outs, dx, grads = our_outputs_and_grads(layer, x, probes)

    w = {k: v.data for k, v in layer.weights.items()}
    mod = torch.nn.LSTM(TF, TU, batch_first=True, dtype=getattr(torch, dtype.__name__))
    set_torch_params(torch, mod, {"weight_ih_l0": w["kernel"].T,
                                  "weight_hh_l0": w["recurrent_kernel"].T,
                                  "bias_ih_l0": w["bias"],
                                  "bias_hh_l0": np.zeros_like(w["bias"])})
    x_t = torch.tensor(x, requires_grad=True)
    feed = torch.flip(x_t, [1]) if go_backwards else x_t
    seq, (h, c) = mod(feed)
    t_outs, t_dx = torch_run([seq, h[0], c[0]], x_t, probes)
    compare("LSTM", dtype, paired(outs, t_outs) + [
        (dx, t_dx),
        (grads["lstm/kernel"], mod.weight_ih_l0.grad.numpy().T),
        (grads["lstm/recurrent_kernel"], mod.weight_hh_l0.grad.numpy().T),
        (grads["lstm/bias"], mod.bias_ih_l0.grad.numpy())])
    assert outs[0].dtype == dtype and dx.dtype == dtype
    assert all(g.dtype == dtype for g in grads.values())


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_gru_matches_torch(dtype, go_backwards):
    torch = pytest.importorskip("torch")
    layer = build(GRU("gru", dict(units=TU, return_sequences=True, return_state=True,
                                  go_backwards=go_backwards)), (None, TT, TF), dtype)
    x = seq_input(dtype, (TB, TT, TF))
    probes = probes_for([(TB, TT, TU), (TB, TU)], dtype)
    outs, dx, grads = our_outputs_and_grads(layer, x, probes)

    w = {k: v.data for k, v in layer.weights.items()}
    mod = torch.nn.GRU(TF, TU, batch_first=True, dtype=getattr(torch, dtype.__name__))
    set_torch_params(torch, mod, {"weight_ih_l0": gru_to_torch(w["kernel"], TU).T,
                                  "weight_hh_l0": gru_to_torch(w["recurrent_kernel"], TU).T,
                                  "bias_ih_l0": gru_to_torch(w["bias"][0], TU),
                                  "bias_hh_l0": gru_to_torch(w["bias"][1], TU)})
    x_t = torch.tensor(x, requires_grad=True)
    feed = torch.flip(x_t, [1]) if go_backwards else x_t
    seq, h = mod(feed)
    t_outs, t_dx = torch_run([seq, h[0]], x_t, probes)
    t_bias = np.stack([gru_from_torch(mod.bias_ih_l0.grad.numpy(), TU),
                       gru_from_torch(mod.bias_hh_l0.grad.numpy(), TU)])
    compare("GRU", dtype, paired(outs, t_outs) + [
        (dx, t_dx),
        (grads["gru/kernel"], gru_from_torch(mod.weight_ih_l0.grad.numpy().T, TU)),
        (grads["gru/recurrent_kernel"], gru_from_torch(mod.weight_hh_l0.grad.numpy().T, TU)),
        (grads["gru/bias"], t_bias)])


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_simple_rnn_matches_torch(dtype, go_backwards):
    torch = pytest.importorskip("torch")
    layer = build(SimpleRNN("rnn", dict(units=TU, return_sequences=True, return_state=True,
                                        go_backwards=go_backwards)), (None, TT, TF), dtype)
    x = seq_input(dtype, (TB, TT, TF))
    probes = probes_for([(TB, TT, TU), (TB, TU)], dtype)
    outs, dx, grads = our_outputs_and_grads(layer, x, probes)

    w = {k: v.data for k, v in layer.weights.items()}
    mod = torch.nn.RNN(TF, TU, nonlinearity="tanh", batch_first=True,
                       dtype=getattr(torch, dtype.__name__))
    set_torch_params(torch, mod, {"weight_ih_l0": w["kernel"].T,
                                  "weight_hh_l0": w["recurrent_kernel"].T,
                                  "bias_ih_l0": w["bias"],
                                  "bias_hh_l0": np.zeros_like(w["bias"])})
    x_t = torch.tensor(x, requires_grad=True)
    feed = torch.flip(x_t, [1]) if go_backwards else x_t
    seq, h = mod(feed)
    t_outs, t_dx = torch_run([seq, h[0]], x_t, probes)
    compare("SimpleRNN", dtype, paired(outs, t_outs) + [
        (dx, t_dx),
        (grads["rnn/kernel"], mod.weight_ih_l0.grad.numpy().T),
        (grads["rnn/recurrent_kernel"], mod.weight_hh_l0.grad.numpy().T),
        (grads["rnn/bias"], mod.bias_ih_l0.grad.numpy())])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_last_output_only_matches_torch(dtype):
    """return_sequences=False: the output is the last step of torch's sequence."""
    torch = pytest.importorskip("torch")
    layer = build(LSTM("lstm", dict(units=TU)), (None, TT, TF), dtype)
    x = seq_input(dtype, (TB, TT, TF))
    probes = probes_for([(TB, TU)], dtype)
    outs, dx, grads = our_outputs_and_grads(layer, x, probes)
    w = {k: v.data for k, v in layer.weights.items()}
    mod = torch.nn.LSTM(TF, TU, batch_first=True, dtype=getattr(torch, dtype.__name__))
    set_torch_params(torch, mod, {"weight_ih_l0": w["kernel"].T,
                                  "weight_hh_l0": w["recurrent_kernel"].T,
                                  "bias_ih_l0": w["bias"],
                                  "bias_hh_l0": np.zeros_like(w["bias"])})
    x_t = torch.tensor(x, requires_grad=True)
    seq, _ = mod(x_t)
    t_outs, t_dx = torch_run([seq[:, -1]], x_t, probes)
    compare("LSTM", dtype, [(outs[0], t_outs[0]), (dx, t_dx),
                            (grads["lstm/kernel"], mod.weight_ih_l0.grad.numpy().T)])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_embedding_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    layer = build(Embedding("emb", dict(input_dim=7, output_dim=5)), (None, 6), dtype)
    idx = np.random.default_rng(3).integers(0, 7, (4, 6))
    probe = probes_for([(4, 6, 5)], dtype)[0]
    with recording():
        out = layer.forward([Variable(idx)], CallContext())[0]
        backward(ops.sum_(ops.mul(out, Variable(probe))))
    mod = torch.nn.Embedding(7, 5, dtype=getattr(torch, dtype.__name__))
    set_torch_params(torch, mod, {"weight": layer.weights["embeddings"].data})
    t_out = mod(torch.from_numpy(idx))
    (t_out * torch.from_numpy(probe)).sum().backward()
    compare("Embedding", dtype, [(out.data, t_out.detach().numpy()),
                                 (layer.weights["embeddings"].grad, mod.weight.grad.numpy())])
    assert out.dtype == dtype and layer.weights["embeddings"].grad.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_bidirectional_lstm_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    inner = LSTM("lstm", dict(units=TU, return_sequences=True, return_state=True))
    layer = build(Bidirectional("bi", dict(layer=inner)), (None, TT, TF), dtype)
    x = seq_input(dtype, (TB, TT, TF))
    probes = probes_for([(TB, TT, 2 * TU)] + [(TB, TU)] * 4, dtype)
    outs, dx, grads = our_outputs_and_grads(layer, x, probes)

    mod = torch.nn.LSTM(TF, TU, batch_first=True, bidirectional=True,
                        dtype=getattr(torch, dtype.__name__))
    params = {}
    for suffix, lyr in (("", layer.forward_layer), ("_reverse", layer.backward_layer)):
        w = {k: v.data for k, v in lyr.weights.items()}
        params.update({f"weight_ih_l0{suffix}": w["kernel"].T,
                       f"weight_hh_l0{suffix}": w["recurrent_kernel"].T,
                       f"bias_ih_l0{suffix}": w["bias"],
                       f"bias_hh_l0{suffix}": np.zeros_like(w["bias"])})
    set_torch_params(torch, mod, params)
    x_t = torch.tensor(x, requires_grad=True)
    seq, (h, c) = mod(x_t)
    t_outs, t_dx = torch_run([seq, h[0], c[0], h[1], c[1]], x_t, probes)
    pairs = paired(outs, t_outs) + [(dx, t_dx)]
    for suffix, lyr in (("", "lstm"), ("_reverse", "backward_lstm")):
        pairs += [(grads[f"{lyr}/kernel"], getattr(mod, f"weight_ih_l0{suffix}").grad.numpy().T),
                  (grads[f"{lyr}/recurrent_kernel"],
                   getattr(mod, f"weight_hh_l0{suffix}").grad.numpy().T),
                  (grads[f"{lyr}/bias"], getattr(mod, f"bias_ih_l0{suffix}").grad.numpy())]
    compare("Bidirectional(LSTM)", dtype, pairs)


def test_zz_report_errors_vs_torch():
    """Prints the largest relative error per layer and dtype (run with -s to see it)."""
    for kind, err in sorted(ERRORS.items()):
        print(f"max relative error vs PyTorch, {kind}: {err:.2e}")


# -- shapes, weights, errors ------------------------------------------------------------------

@pytest.mark.parametrize("cls,states", [(SimpleRNN, 1), (LSTM, 2), (GRU, 1)])
def test_recurrent_output_shapes(cls, states):
    assert cls("r", dict(units=5)).compute_output_shapes([(None, 7, 3)]) == [(None, 5)]
    assert cls("r", dict(units=5, return_sequences=True)).compute_output_shapes(
        [(None, None, 3)]) == [(None, None, 5)]
    full = cls("r", dict(units=5, return_sequences=True, return_state=True))
    assert full.compute_output_shapes([(None, 7, 3)]) == [(None, 7, 5)] + [(None, 5)] * states
    layer = build(full, (None, 7, 3))
    outs = layer.forward([Variable(seq_input(shape=(2, 7, 3)))], CallContext())
    assert [o.shape for o in outs] == [(2, 7, 5)] + [(2, 5)] * states


def test_weight_shapes():
    def shapes(layer):
        return {s.name: s.shape for s in layer.weight_specs([(None, 7, 3)])}
    assert shapes(LSTM("l", dict(units=5))) == {
        "kernel": (3, 20), "recurrent_kernel": (5, 20), "bias": (20,)}
    assert shapes(GRU("g", dict(units=5))) == {
        "kernel": (3, 15), "recurrent_kernel": (5, 15), "bias": (2, 15)}
    assert shapes(GRU("g", dict(units=5, reset_after=False)))["bias"] == (15,)
    assert shapes(SimpleRNN("s", dict(units=5, use_bias=False))) == {
        "kernel": (3, 5), "recurrent_kernel": (5, 5)}
    assert Embedding("e", dict(input_dim=10, output_dim=4)).weight_specs([(None, 3)])[0].shape \
        == (10, 4)


def test_default_initializers():
    specs = {s.name: s for s in LSTM("l", dict(units=4)).weight_specs([(None, 2, 3)])}
    assert specs["kernel"].initializer == "glorot_uniform"
    assert specs["recurrent_kernel"].initializer == "orthogonal"
    bias_init = specs["bias"].initializer
    assert isinstance(bias_init, UnitForgetBias)
    bias = bias_init((16,), np.random.default_rng(0))
    np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    plain = {s.name: s for s in LSTM("l", dict(units=4, unit_forget_bias=False))
             .weight_specs([(None, 2, 3)])}
    assert plain["bias"].initializer == "zeros"
    assert Embedding("e", dict(input_dim=3, output_dim=2)).weight_specs(
        [(None, 1)])[0].initializer == "random_uniform"
    assert Embedding("e", dict(input_dim=3, output_dim=2)).mask_zero is False


def test_embedding_shapes_and_float_indices():
    layer = build(Embedding("e", dict(input_dim=4, output_dim=2)), (None, 3))
    assert layer.compute_output_shapes([(None, 3)]) == [(None, 3, 2)]
    assert layer.compute_output_shapes([(None, 2, 3)]) == [(None, 2, 3, 2)]
    table = layer.weights["embeddings"].data
    out = layer.forward([Variable(np.array([[0., 3., 1.]]))], CallContext())[0]
    np.testing.assert_array_equal(out.data, table[[[0, 3, 1]]])
    out = layer.forward([Variable(np.array([[2, 2, 0]], dtype=np.int32))], CallContext())[0]
    np.testing.assert_array_equal(out.data, table[[[2, 2, 0]]])


@pytest.mark.parametrize("bad", [[[0, 4]], [[-1, 0]]])
def test_embedding_out_of_range(bad):
    layer = build(Embedding("words", dict(input_dim=4, output_dim=2)), (None, 2))
    with pytest.raises(ValueError, match=r"'words'.*\[0, 3\]") as info:
        layer.forward([Variable(np.array(bad))], CallContext())
    assert isinstance(info.value, InputError)


def test_embedding_non_integer_indices():
    layer = build(Embedding("words", dict(input_dim=4, output_dim=2)), (None, 2))
    with pytest.raises(ValueError, match="integer"):
        layer.forward([Variable(np.array([[0.5, 1.0]]))], CallContext())


@pytest.mark.parametrize("shape", [(None, 3), (None, 4, None), (None, 2, 3, 4), (None, 0, 3)])
def test_recurrent_rejects_bad_input_shapes(shape):
    with pytest.raises(ShapeError, match="LSTM layer 'seq'"):
        LSTM("seq", dict(units=2)).compute_output_shapes([shape])


def test_recurrent_rejects_two_inputs():
    with pytest.raises(ShapeError, match="takes 1 input"):
        GRU("g", dict(units=2)).compute_output_shapes([(None, 2, 3), (None, 2, 3)])


def test_float32_stays_float32():
    layer = build(GRU("g", dict(units=3, return_sequences=True)), (None, 4, 3), np.float32)
    with recording():
        xv = Variable(seq_input(np.float32), requires_grad=True)
        out = layer.forward([xv], CallContext())[0]
        backward(ops.sum_(out))
    assert out.dtype == np.float32 and xv.grad.dtype == np.float32
    assert all(w.grad.dtype == np.float32 for w in layer.weights.values())


def test_inference_records_nothing():
    layer = build(LSTM("l", dict(units=3, return_state=True)), (None, T, F))
    outs = layer.forward([Variable(seq_input())], CallContext())
    assert all(o.backward is None and not o.parents for o in outs)


def test_bidirectional_structure_and_shapes():
    inner = LSTM("enc", dict(units=4, return_sequences=True, return_state=True))
    bi = Bidirectional("bi", dict(layer=inner))
    fw, bw = bi.sublayers()
    assert fw is inner and type(bw) is LSTM and bw.name == "backward_enc"
    assert bw.go_backwards is True and fw.go_backwards is False and bw.units == 4
    assert bi.compute_output_shapes([(None, 6, 3)]) == [(None, 6, 8)] + [(None, 4)] * 4
    assert Bidirectional("b", dict(layer=inner, merge_mode="sum")).compute_output_shapes(
        [(None, 6, 3)])[0] == (None, 6, 4)
    two = Bidirectional("b", dict(layer=GRU("g", dict(units=4)), merge_mode=None))
    assert two.compute_output_shapes([(None, 6, 3)]) == [(None, 4), (None, 4)]
    build(two, (None, 6, 3))
    assert set(two.backward_layer.weights) == {"kernel", "recurrent_kernel", "bias"}
    assert two.backward_layer.weights["kernel"] is not two.forward_layer.weights["kernel"]
    assert two.param_count() == (0, 0)


def test_bidirectional_sequence_is_realigned():
    """The backward half of a sequence output equals a go_backwards run, flipped back."""
    inner = SimpleRNN("r", dict(units=3, return_sequences=True))
    bi = build(Bidirectional("bi", dict(layer=inner, merge_mode=None)), (None, T, F))
    x = seq_input()
    fw, bw = bi.forward([Variable(x)], CallContext())
    alone = bi.backward_layer.forward([Variable(x)], CallContext())[0].data
    np.testing.assert_array_equal(bw.data, alone[:, ::-1])
    np.testing.assert_array_equal(
        fw.data, bi.forward_layer.forward([Variable(x)], CallContext())[0].data)


def test_bidirectional_rejects_non_recurrent():
    with pytest.raises(ShapeError, match="recurrent layer.*Dense 'd'"):
        Bidirectional("bi", dict(layer=Dense("d", dict(units=2))))
