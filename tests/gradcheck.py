"""Finite-difference gradient checking in float64, shared by the op and layer tests."""
from __future__ import annotations

import numpy as np

from graphspec.autodiff import Variable, backward, recording


def numeric_grad(f, arrays, index, eps=1e-6):
    """Central differences of sum(f(*arrays) * probe) w.r.t. arrays[index]."""
    x = arrays[index]
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = f(*arrays)
        x[i] = old - eps
        minus = f(*arrays)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(fn, *arrays, wrt=None, seed=0, rtol=1e-5, atol=1e-7, eps=1e-6):
    """Assert that the tape's gradients of ``fn`` match central differences.

    ``fn`` takes Variables and returns a Variable (or list of them). The scalar checked
    is ``sum(out * probe)`` with a fixed random probe so every output element matters.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    wrt = range(len(arrays)) if wrt is None else wrt
    rng = np.random.default_rng(seed)
    probes = None

    def outputs_of(variables):
        out = fn(*variables)
        return out if isinstance(out, (list, tuple)) else [out]

    def scalar(*values):
        nonlocal probes
        outs = outputs_of([Variable(v) for v in values])
        if probes is None:
            probes = [rng.standard_normal(o.data.shape) for o in outs]
        return sum(float((o.data * p).sum()) for o, p in zip(outs, probes))

    scalar(*arrays)  # fixes the probes
    with recording():
        variables = [Variable(a.copy(), requires_grad=(i in wrt)) for i, a in enumerate(arrays)]
        outs = outputs_of(variables)
        from graphspec import ops
        total = None
        for o, p in zip(outs, probes):
            term = ops.sum_(ops.mul(o, Variable(p)))
            total = term if total is None else ops.add(total, term)
        backward(total)
    for i in wrt:
        expected = numeric_grad(scalar, arrays, i, eps)
        got = variables[i].grad if variables[i].grad is not None else np.zeros_like(arrays[i])
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


def check_model_gradients(model, inputs: dict, rtol=1e-5, atol=1e-7, eps=1e-6, seed=0,
                          max_entries=40, jitter=0.0):
    """FD check of d(sum(outputs * probes)) w.r.t. every weight the model uses and every
    float input, through the whole compiled graph (sub-models, shared layers,
    expressions). Checks at most ``max_entries`` entries per array, chosen at random.

    ``jitter`` adds that much noise to every weight first: zero biases on sparse inputs
    put ReLUs exactly on their kink, where finite differences are meaningless."""
    from graphspec.layers.base import CallContext
    rng = np.random.default_rng(seed)
    names = model.input_names
    arrays = {n: np.asarray(inputs[n]) for n in names}
    weights = {f"{layer.name}/{k}": v for layer in model.layers() for k, v in layer.weights.items()}
    for var in weights.values():
        var.data = var.data + jitter * rng.standard_normal(var.data.shape)
    probes = None

    def objective(record=False):
        nonlocal probes
        ctx = CallContext(training=False, rng=np.random.default_rng(0))
        with recording(record):
            feeds = [Variable(arrays[n], requires_grad=record and arrays[n].dtype.kind == "f")
                     for n in names]
            outs = model.forward(feeds, ctx)
            if probes is None:
                probes = [rng.standard_normal(o.data.shape) for o in outs]
            from graphspec import ops
            total = None
            for o, p in zip(outs, probes):
                term = ops.sum_(ops.mul(o, Variable(p)))
                total = term if total is None else ops.add(total, term)
        return total, feeds

    objective()
    for var in weights.values():
        var.requires_grad, var.grad = True, None
    total, feeds = objective(record=True)
    backward(total)
    targets = [(k, v.data, v.grad) for k, v in weights.items()]
    targets += [(n, arrays[n], f.grad) for n, f in zip(names, feeds) if arrays[n].dtype.kind == "f"]
    assert targets, "nothing to check"
    for key, array, grad in targets:
        grad = np.zeros_like(array) if grad is None else grad
        flat = list(np.ndindex(array.shape))
        picks = [flat[i] for i in rng.choice(len(flat), min(max_entries, len(flat)), replace=False)]
        for index in picks:
            old = array[index]
            array[index] = old + eps
            plus = float(objective()[0].data)
            array[index] = old - eps
            minus = float(objective()[0].data)
            array[index] = old
            expected = (plus - minus) / (2 * eps)
            assert abs(grad[index] - expected) <= atol + rtol * abs(expected), \
                f"d/d {key}{list(index)}: tape {grad[index]!r}, finite differences {expected!r}"
