"""Run one graphspec layer and its Keras / PyTorch counterpart on the same input and
weights, forward and backward (gradient of sum(output * probe)), and compare."""
from __future__ import annotations

import json

import numpy as np

from graphspec.autodiff import Variable, backward, recording
from graphspec.layers.base import CallContext
from graphspec.layers.registry import REGISTRY

# Largest relative error seen per (layer, reference), printed by test_report at the end.
WORST: dict = {}


def make_layer(kind: str, config: dict, feature_shape, dtype=np.float64, seed=0,
               scale=0.7):
    """A built layer of ``kind`` with uniform(-scale, scale) weights (non-zero biases)."""
    layer = REGISTRY[kind](name="probe", config=dict(config))
    shape = (None,) + tuple(feature_shape)
    out_shape = layer.compute_output_shapes([shape])[0]
    layer.register_weights([shape])
    rng = np.random.default_rng(seed)
    layer.weights = {n: Variable(rng.uniform(-scale, scale, s.shape).astype(dtype),
                                 requires_grad=True, name=n)
                     for n, s in layer.weight_shapes.items()}
    return layer, out_shape


def run_ours(layer, x, probe):
    """(output, input gradient, {weight name: gradient})."""
    with recording():
        xv = Variable(x.copy(), requires_grad=True)
        for w in layer.weights.values():
            w.grad = None
        out = layer.forward([xv], CallContext())[0]
        backward(out, seed=probe)
    return out.data, xv.grad, {n: w.grad for n, w in layer.weights.items()}


def relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if b.size else 0.0


def record(label: str, err: float, tol: float, what: str):
    WORST[label] = max(WORST.get(label, 0.0), err)
    assert err <= tol, f"{label} {what}: relative error {err:.2e} > {tol:.0e}"


def compare_all(label, ours, theirs, tol):
    """ours/theirs: (output, input grad, {name: grad}); every pair within ``tol``."""
    record(label, relative(ours[0], theirs[0]), tol, "output")
    if theirs[1] is not None:
        record(label, relative(ours[1], theirs[1]), tol, "input gradient")
    for name, grad in theirs[2].items():
        record(label, relative(ours[2][name], grad), tol, f"{name} gradient")


def run_keras(keras, keras_layer, x, weights: dict, probe):
    """Keras' forward and one backward pass on the torch backend, with ``weights``
    assigned by Keras' variable names; (output, input grad, {name: grad})."""
    import torch
    keras_layer.build(x.shape)
    for var in keras_layer.weights:
        var.assign(weights[var.name])
    xt = torch.tensor(x, requires_grad=True)
    out = keras_layer(xt)
    (out * torch.tensor(probe)).sum().backward()
    grads = {var.name: var.value.grad.detach().numpy() for var in keras_layer.weights}
    return out.detach().numpy(), xt.grad.numpy(), grads


def keras_check(keras, kind, config, keras_class, feature_shape, tol=1e-9, batch=2,
                seed=0, weights_map=None, keras_config=None, x=None):
    """graphspec ``kind`` vs ``keras_class(**keras_config or config)`` in float64:
    output, input gradient and every weight's gradient. ``weights_map``: Keras name ->
    graphspec name when they differ."""
    layer, out_shape = make_layer(kind, config, feature_shape, seed=seed)
    keras_layer = keras_class(**(config if keras_config is None else keras_config),
                              dtype="float64")
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch,) + tuple(feature_shape)) if x is None else x
    probe = rng.standard_normal((batch,) + tuple(out_shape[1:]))
    ours = run_ours(layer, x, probe)
    names = weights_map or {n: n for n in layer.weights}
    theirs = run_keras(keras, keras_layer, x,
                       {k: layer.weights[v].data for k, v in names.items()}, probe)
    theirs = (theirs[0], theirs[1], {names[k]: g for k, g in theirs[2].items()})
    compare_all(f"{kind} vs Keras", ours, theirs, tol)


def one_call_spec(layer: dict, shape) -> str:
    return json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": {"x": {"shape": list(shape)}},
        "calls": [{"layer": layer, "in": "x", "out": "y"}], "outputs": ["y"]}}})


def onnx_check(layer: dict, shape, batch=3, seed=0):
    """Export a one-layer model (weights randomised) and compare onnxruntime with predict
    under graphspec's agreement rule; returns the report."""
    import onnx

    import graphspec
    from graphspec.interop.onnx_check import check_against_predict, random_feeds
    from graphspec.interop.onnx_export import to_onnx
    graph = graphspec.loads(one_call_spec(layer, shape), seed=0)
    rng = np.random.default_rng(seed)
    for var in graph.weights().values():
        var.data = (rng.standard_normal(var.data.shape) * 0.5).astype(var.data.dtype)
    model = graph.model()
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    report = check_against_predict(model, proto, random_feeds(model, batch, seed))
    assert all(r["ok"] for r in report.values()), report
    WORST[f"{layer['type']} vs onnxruntime"] = max(
        WORST.get(f"{layer['type']} vs onnxruntime", 0.0),
        max(r["max_rel"] for r in report.values()))
    return report
