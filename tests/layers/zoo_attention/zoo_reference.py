"""Shared helpers: build a graphspec layer with random weights, run it forward and
backward on the tape, and run the same computation in Keras 3 (torch backend, float64)
with the same weights, through torch's autograd."""
import numpy as np

from graphspec.autodiff import Variable, backward, recording
from graphspec.layers.base import CallContext
from graphspec.layers.registry import REGISTRY

WORST = {}   # (layer type, what) -> largest relative error seen against the reference


def build(kind, config, shapes, dtype=np.float64, seed=0):
    """A compiled-and-initialised layer of TYPE ``kind`` for inputs of ``shapes`` (batch
    excluded); weights drawn away from their initial values (variances positive)."""
    layer = REGISTRY[kind]("layer", config)
    full = [(None,) + tuple(s) for s in shapes]
    layer.compute_output_shapes(full)
    layer.register_weights(full)
    rng = np.random.default_rng(seed)
    layer.weights = {}
    for name, spec in layer.weight_shapes.items():
        low, high = (0.5, 1.5) if name.endswith(("variance", "gamma")) else (-0.8, 0.8)
        layer.weights[name] = Variable(rng.uniform(low, high, spec.shape).astype(dtype),
                                       requires_grad=spec.trainable, name=name)
    return layer


def ours(layer, inputs, probes, training=False, seed=0):
    """Outputs, input gradients and weight gradients of sum(out * probe)."""
    ctx = CallContext(training=training, rng=np.random.default_rng(seed))
    with recording():
        xs = [Variable(np.array(x), requires_grad=np.asarray(x).dtype.kind == "f")
              for x in inputs]
        for w in layer.weights.values():
            w.grad = None
            w.requires_grad = True
        outs = layer.forward(xs, ctx)
        from graphspec import ops
        total = None
        for o, p in zip(outs, probes):
            term = ops.sum_(ops.mul(o, Variable(p)))
            total = term if total is None else ops.add(total, term)
        backward(total)
    return ([o.data for o in outs], [x.grad for x in xs],
            {n: w.grad for n, w in layer.weights.items()})


def keras_run(klayer, call, inputs, probes, weights):
    """``call(klayer, tensors)`` in Keras with ``weights`` (graphspec order) assigned;
    outputs, input gradients and weight gradients (torch autograd)."""
    import torch
    for var, value in zip(klayer.weights, weights):
        var.assign(np.asarray(value, dtype=var.dtype))
    tensors = [torch.tensor(np.asarray(x), requires_grad=np.asarray(x).dtype.kind == "f")
               for x in inputs]
    outs = call(klayer, tensors)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    params = [v.value for v in klayer.weights[:len(weights)]]
    # Keras' non-trainable weights (Normalization's statistics) are plain tensors: no
    # gradient is asked of them (graphspec's are compared with finite differences)
    leaves = [t for t in tensors if t.requires_grad] + [p for p in params if p.requires_grad]
    total = sum((o * torch.tensor(p)).sum() for o, p in zip(outs, probes))
    grads = iter(torch.autograd.grad(total, leaves, allow_unused=True))
    gx = [next(grads) for t in tensors if t.requires_grad]
    gw = [next(grads) if p.requires_grad else "skip" for p in params]
    numpy = [None if g is None else g if isinstance(g, str) else g.detach().numpy()
             for g in gx + gw]
    return [o.detach().numpy() for o in outs], numpy[:len(gx)], numpy[len(gx):]


def rel_err(got, want, floor=1e-30) -> float:
    """Largest difference relative to the largest magnitude (at least ``floor``)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), floor))


def compare_with_keras(layer, klayer, call, inputs, seed=0, forward_tol=1e-6, grad_tol=1e-5):
    """Same weights -> same outputs (forward_tol) and gradients w.r.t. the float inputs
    and every weight (grad_tol), both relative to the largest magnitude."""
    rng = np.random.default_rng(seed)
    outs_probe = layer.forward([Variable(np.array(x)) for x in inputs], CallContext())
    probes = [rng.standard_normal(o.data.shape) for o in outs_probe]
    names = list(layer.weights)
    weights = [layer.weights[n].data for n in names]
    outs, gx, gw = ours(layer, inputs, probes)
    k_outs, k_gx, k_gw = keras_run(klayer, call, inputs, probes, weights)
    assert len(outs) == len(k_outs)
    errors = {}
    for i, (a, b) in enumerate(zip(outs, k_outs)):
        assert a.shape == b.shape, (a.shape, b.shape)
        errors[f"output {i}"] = rel_err(a, b)
        assert errors[f"output {i}"] <= forward_tol, errors
    float_grads = [g for x, g in zip(inputs, gx) if np.asarray(x).dtype.kind == "f"]
    for i, (a, b) in enumerate(zip(float_grads, k_gx)):
        errors[f"d input {i}"] = rel_err(a, b)
    # floor: MultiHeadAttention's key bias has an exactly zero gradient (a constant
    # added to every score of a query row), so both sides are rounding noise there:
    # measured against the largest weight gradient instead
    compared = [(n, b if b is not None else np.zeros_like(gw[n]))
                for n, b in zip(names, k_gw) if not isinstance(b, str)]
    floor = max([float(np.max(np.abs(b))) for _, b in compared if b.size] + [1e-30])
    for n, b in compared:
        errors[f"d {n}"] = rel_err(gw[n], b, floor * 1e-2)
    key = (layer.TYPE, "keras")
    WORST[key] = max(WORST.get(key, 0.0), max(errors.values()))
    assert max(errors.values()) <= grad_tol, errors
    return errors
