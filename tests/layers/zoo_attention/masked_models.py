"""Masked-model harness: the same small model as a graphspec spec (YAML text) and in Keras
3 (torch backend), weights copied by layer name, compared forward and on one training
step's gradients (of sum(outputs * probe)), plus finite differences in float64.

A model is a *front* that makes the mask, then the layers under test:

- ``embedding``: int tokens ``(steps,)`` -> ``Embedding(mask_zero)`` -> ``seq``;
- ``masking``: floats ``(steps, features)`` -> ``Masking(0)`` -> ``seq``.

Padding patterns (row per sample): right padding, left padding, none, all padded.
"""
from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"     # before anything imports keras

import numpy as np  # noqa: E402
import yaml  # noqa: E402

import graphspec  # noqa: E402
from graphspec import ops  # noqa: E402
from graphspec.autodiff import Variable, backward, recording  # noqa: E402
from graphspec.layers.base import CallContext  # noqa: E402

WORST: dict = {}      # (what, reference) -> largest relative error seen
STEPS, FEATURES, VOCAB = 5, 4, 7
# True = a real step; rows: right padding, left padding, none, all padded
PATTERNS = {
    "right": [1, 1, 1, 0, 0],
    "left": [0, 0, 1, 1, 1],
    "none": [1, 1, 1, 1, 1],
    "all": [0, 0, 0, 0, 0],
}


def keep_rows(rows=("right", "left", "none", "all"), steps=STEPS) -> np.ndarray:
    return np.array([PATTERNS[r][:steps] + [1] * (steps - len(PATTERNS[r]))
                     for r in rows], dtype=bool)


def front_data(front: str, keep: np.ndarray, seed=0, features=FEATURES):
    """The input array of a front whose mask is ``keep`` (tokens 1.. or floats)."""
    rng = np.random.default_rng(seed)
    if front == "embedding":
        return np.where(keep, rng.integers(1, VOCAB, keep.shape), 0).astype(np.int32)
    x = rng.standard_normal(keep.shape + (features,))
    return np.where(keep[..., None], x, 0.0)


def front_spec(front: str, name: str, steps=STEPS, features=FEATURES):
    """(inputs, layers, calls) of the front producing tensor ``name``."""
    if front == "embedding":
        return ({f"{name}_in": {"shape": [steps], "dtype": "int32"}},
                {f"{name}_embed": {"type": "Embedding", "input_dim": VOCAB,
                                   "output_dim": features, "mask_zero": True}},
                [{"layer": f"{name}_embed", "in": f"{name}_in", "out": name}])
    return ({f"{name}_in": {"shape": [steps, features]}},
            {f"{name}_mask": {"type": "Masking", "mask_value": 0.0}},
            [{"layer": f"{name}_mask", "in": f"{name}_in", "out": name}])


def keras_front(keras, front: str, name: str, dtype, steps=STEPS, features=FEATURES):
    """(Keras input, masked tensor) of the same front, the same layer names."""
    if front == "embedding":
        tokens = keras.Input((steps,), dtype="int32", name=f"{name}_in")
        return tokens, keras.layers.Embedding(VOCAB, features, mask_zero=True,
                                              name=f"{name}_embed", dtype=dtype)(tokens)
    x = keras.Input((steps, features), dtype=dtype, name=f"{name}_in")
    return x, keras.layers.Masking(0.0, name=f"{name}_mask", dtype=dtype)(x)


def _input_spec(array) -> dict:
    return {"shape": list(array.shape[1:]),
            **({} if array.dtype.kind == "f" else {"dtype": "int32"})}


def spec_text(fronts: dict, layers: dict, calls: list, outputs: list, extra=None,
              **sizes) -> str:
    """YAML of one model: ``fronts`` {tensor name: front kind}, the unmasked ``extra``
    inputs {name: example array}, then ``calls``."""
    inputs, all_layers, all_calls = {}, {}, []
    for name, kind in fronts.items():
        i, lay, c = front_spec(kind, name, **sizes)
        inputs.update(i)
        all_layers.update(lay)
        all_calls += c
    inputs.update({name: _input_spec(a) for name, a in (extra or {}).items()})
    all_layers.update(layers)
    return yaml.safe_dump({"graphspec": 1, "layers": all_layers, "models": {"m": {
        "inputs": inputs, "calls": all_calls + calls, "outputs": outputs}}},
        sort_keys=False)


def build_pair(keras, fronts: dict, layers: dict, calls: list, outputs: list, keras_body,
               dtype="float64", seed=0, extra=None, **sizes):
    """The graphspec graph (weights drawn away from their initial values) and the Keras
    model ``keras_body(keras, {tensor name: masked tensor}, dtype) -> outputs`` with the
    same weights, copied by layer name."""
    graph = graphspec.loads(spec_text(fronts, layers, calls, outputs, extra, **sizes),
                            seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 100)
    for var in graph.weights().values():
        positive = var.data.min() > 0     # variances, gammas: keep them positive
        noise = rng.uniform(0.5, 1.5, var.data.shape) if positive \
            else rng.uniform(-0.8, 0.8, var.data.shape)
        var.data = np.array(var.data * noise if positive else var.data + noise, dtype)
    k_inputs, tensors = [], {}
    for name, kind in fronts.items():
        k_in, tensors[name] = keras_front(keras, kind, name, dtype, **sizes)
        k_inputs.append(k_in)
    for name, array in (extra or {}).items():
        tensors[name] = keras.Input(array.shape[1:], name=name,
                                    dtype=dtype if array.dtype.kind == "f" else "int32")
        k_inputs.append(tensors[name])
    outs = keras_body(keras, tensors, dtype)
    kmodel = keras.Model(k_inputs, outs if isinstance(outs, list) else [outs])
    kmodel.graphspec_keys = copy_weights(graph, kmodel)
    return graph, kmodel


def copy_weights(graph, kmodel) -> list:
    """Assigns graphspec's weights to the Keras layers of the same names (same order,
    same shapes); returns ``(Keras variable, 'layer/weight')`` pairs."""
    pairs = []
    for layer in kmodel.layers:
        if layer.weights:
            ours = graph.layers[layer.name].weights
            assert [tuple(v.shape) for v in layer.weights] == \
                [tuple(w.data.shape) for w in ours.values()], layer.name
            for var, (name, weight) in zip(layer.weights, ours.items()):
                var.assign(weight.data)
                pairs.append((var, f"{layer.name}/{name}"))
    assert len(pairs) == len(graph.weights())
    return pairs


def probes_for(outs, seed=0):
    """One fixed probe per output; zero on NaN entries (a fully masked mean) so both
    sides differentiate the finite part only."""
    rng = np.random.default_rng(seed)
    return [np.where(np.isnan(o), 0.0, rng.standard_normal(o.shape)) for o in outs]


def ours(graph, inputs, probes=None, training=False):
    """(outputs, {weight key: grad}, [input grads]) of sum(outputs * probes)."""
    model = graph.model()
    weights = _weights(graph)
    with recording(probes is not None):
        feeds = [Variable(np.array(x), requires_grad=probes is not None and x.dtype.kind == "f")
                 for x in inputs]
        for var in weights.values():
            var.grad, var.requires_grad = None, True
        outs = model.forward(feeds, CallContext(training=training,
                                                rng=np.random.default_rng(0)))
        if probes is None:
            return [o.data for o in outs], None, None
        total = None
        for o, p in zip(outs, probes):
            term = ops.sum_(ops.mul(o, Variable(p.astype(o.data.dtype))))
            total = term if total is None else ops.add(total, term)
        backward(total)
    return ([o.data for o in outs], {k: v.grad for k, v in weights.items()},
            [f.grad for f in feeds])


def _weights(graph) -> dict:
    return {f"{layer.name}/{name}": var for layer in graph.model().layers()
            for name, var in layer.weights.items()}


def theirs(kmodel, inputs, probes, training=False):
    """Keras' outputs, {weight key: grad} of its trainable weights, input grads."""
    import torch
    tensors = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    outs = kmodel(tensors, training=training)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    keys = [key for var, key in kmodel.graphspec_keys if var.trainable]
    params = [var.value for var, key in kmodel.graphspec_keys if var.trainable]
    leaves = [t for t in tensors if t.requires_grad] + params
    total = sum((o * torch.tensor(p)).sum() for o, p in zip(outs, probes))
    grads = torch.autograd.grad(total, leaves, allow_unused=True)
    n_in = len(leaves) - len(params)

    def arr(g, like):
        return np.zeros(tuple(like.shape)) if g is None else g.detach().numpy()
    return ([o.detach().numpy() for o in outs],
            {k: arr(g, p) for k, g, p in zip(keys, grads[n_in:], params)},
            [arr(g, t) for g, t in zip(grads[:n_in], leaves)])


def rel_err(got, want) -> float:
    """Largest difference over the largest magnitude; NaN must meet NaN."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN in different places"
    ok = ~np.isnan(want)
    if not ok.any():
        return 0.0
    return float(np.max(np.abs(got[ok] - want[ok])) / max(np.max(np.abs(want[ok])), 1e-30))


def note(label, err, tol):
    WORST[label] = max(WORST.get(label, 0.0), err)
    assert err <= tol, f"{label}: relative error {err:.2e} > {tol:.0e}"


def compare_with_keras(keras, label, fronts, layers, calls, outputs, keras_body, inputs,
                       training=False, tol=1e-5, extra=None, keras_rows=None,
                       forward_rows=None, **sizes):
    """float32 forward and float64 forward + gradients against Keras, each within
    ``tol`` relative; ``inputs``: the fronts' arrays (``extra``'s follow them). Returns
    the float64 graph and the probes for further checks. ``keras_rows`` (batch, steps):
    the rows of the outputs whose gradients Keras gets right; the others get no probe in
    the gradient comparison (MultiHeadAttention's fully masked queries: ops/attention.py).
    ``forward_rows``: the rows whose float64 outputs are compared (Attention's fully
    masked rows are float32 numbers in Keras: its ops.matmul returns float32)."""
    inputs = list(inputs) + list((extra or {}).values())
    graph32, k32 = build_pair(keras, fronts, layers, calls, outputs, keras_body,
                              "float32", extra=extra, **sizes)
    cast = [x.astype(np.float32) if x.dtype.kind == "f" else x for x in inputs]
    got, _, _ = ours(graph32, cast, training=training)
    want = theirs(k32, cast, [np.zeros(o.shape) for o in got], training)[0]
    for i, (a, b) in enumerate(zip(got, want)):
        note((label, "keras float32 forward"), rel_err(a, b), tol)
    graph, kmodel = build_pair(keras, fronts, layers, calls, outputs, keras_body,
                               "float64", extra=extra, **sizes)
    probes = probes_for(ours(graph, inputs, training=training)[0])
    compared = list(probes)
    if keras_rows is not None:     # every (batch, steps, ...) output
        compared = [p * keras_rows[..., None] if p.shape[:2] == keras_rows.shape else p
                    for p in probes]
    g_outs, g_w, g_in = ours(graph, inputs, compared, training)
    k_outs, k_w, k_in = theirs(kmodel, inputs, compared, training)
    rows = (lambda o: o) if forward_rows is None else (lambda o: o[forward_rows])
    errs = [rel_err(rows(a), rows(b)) for a, b in zip(g_outs, k_outs)]
    note((label, "keras float64 forward"), max(errs), tol)
    assert set(k_w) <= set(g_w), (sorted(k_w), sorted(g_w))
    floor = max([float(np.max(np.abs(g))) for g in k_w.values()] + [1e-30])
    for key, want in k_w.items():
        # relative to the largest weight gradient: some are exactly zero on both sides
        err = float(np.max(np.abs(g_w[key] - want))) / floor
        note((label, "keras float64 gradients"), err, tol)
    float_inputs = [g for x, g in zip(inputs, g_in) if x.dtype.kind == "f"]
    for a, b in zip(float_inputs, k_in):
        note((label, "keras float64 gradients"), rel_err(a, b), tol)
    return graph, probes


def finite_differences(graph, inputs, probes, training=False, label="", tol=1e-5,
                       entries=12, eps=1e-6, seed=0):
    """Central differences of sum(outputs * probes) (NaN entries left out) against the
    tape, for sampled entries of every weight and of the float inputs at unmasked steps
    (a masked step is exactly 0: moving it would unmask it)."""
    rng = np.random.default_rng(seed)
    _, g_w, g_in = ours(graph, inputs, probes, training)
    weights = _weights(graph)

    def objective():
        outs = ours(graph, inputs, training=training)[0]
        return sum(float(np.nansum(o * p)) for o, p in zip(outs, probes))
    targets = [(k, v.data, g_w[k]) for k, v in weights.items()]
    for x, g in zip(inputs, g_in):
        if x.dtype.kind == "f":
            targets.append(("input", x, g))
    worst = 0.0
    for key, array, grad in targets:
        grad = np.zeros_like(array) if grad is None else grad
        flat = [i for i in np.ndindex(array.shape) if key != "input" or np.any(array[i[:-1]])]
        for index in [flat[i] for i in rng.choice(len(flat), min(entries, len(flat)),
                                                  replace=False)]:
            old = array[index]
            array[index] = old + eps
            plus = objective()
            array[index] = old - eps
            minus = objective()
            array[index] = old
            expected = (plus - minus) / (2 * eps)
            err = abs(grad[index] - expected) / max(abs(expected), 1e-2)
            assert err <= tol, f"d/d {key}{list(index)}: tape {grad[index]!r}, FD {expected!r}"
            worst = max(worst, err)
    WORST[(label, "finite differences")] = max(WORST.get((label, "finite differences"), 0), worst)
    return worst
