"""Every expression function and operator, exported in a Lambda or Merge layer and run in
onnxruntime against ``predict``; the random functions in distribution."""
import json

import numpy as np
import pytest

import graphspec
from graphspec.expr import FUNCTIONS, parse_expression
from graphspec.interop.onnx_check import check_against_predict, random_feeds, run_onnxruntime
from graphspec.interop.onnx_export import to_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

X = [(3, 4)]            # one float input: (batch, 3, 4)

# name -> (expr, input shapes, input dtypes or None, constants or None)
CASES = {
    "unary": ("abs(x) + exp(x) + log(1 + abs(x)) + sqrt(abs(x)) + square(x) + sign(x)", X),
    "activations": ("relu(x) + sigmoid(x) + tanh(x) + softplus(x) + selu(x) + gelu(x) + "
                    "elu(x, 0.5) + stop_gradient(x)", X),
    "softmax": ("softmax(x, axis=1) + log_softmax(x) + l2_normalize(x, axis=(1, 2))", X),
    "clip-max-min": ("clip(x, -0.5, 0.5) + maximum(x, 0.25) - minimum(x, [[0.1]])", X),
    "dot": ("dot(x, w) + 1", X, None, {"w": [[1.0, -2.0], [0.5, 3.0], [0.0, 1.0], [2.0, 1.0]]}),
    "matmul-vector": ("x @ [1.0, 2.0, 3.0, 4.0]", X),
    "batch_dot": ("batch_dot(x, x, axes=(2, 2)) + batch_dot(x, permute_dimensions(x, (0, 2, 1)))",
                  X),
    "batch_dot-default": ("batch_dot(x[0], x[1])", [(3, 4), (4, 2)]),
    "one_hot": ("one_hot(x[:, 1], 3) + one_hot(x, 3)[:, 0]", [(3,)], ["int32"]),
    "permute-expand-squeeze": ("squeeze(expand_dims(permute_dimensions(x, (0, 2, 1)), 1), 1)",
                               X),
    "gather": ("permute_dimensions(gather(permute_dimensions(x, (1, 0, 2)), [2, 0, 0]), "
               "(1, 0, 2))", X),
    "gather-tensor-indices": ("gather(w, x[:, 0])", [(2,)], ["int32"],
                              {"w": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]}),
    "concatenate-stack": ("concatenate([x, stack([x[:, 0], x[:, 1]], axis=1)], axis=1)", X),
    "reshape-batch": ("reshape(x, (batch, 2, 6)) + reshape(x, (-1, 2, 6))", X),
    "reshape-shape": ("reshape(x, shape(x)[:1] + (12,)) * int_shape(x)[1]", X),
    "reductions": ("sum(x, axis=1) + mean(x, axis=-1, keepdims=True)[:, :, 0][:, :1] + "
                   "max(x, axis=(1, 2))[:, None] - min(x) * 0", X),
    "slicing": ("x[:, ::-1, 1:4:2] + x[:, -3:, :-2:1] + x[..., None, 0] + x[:, 2:0:-1][:, :1, ::3]",
                X),
    "index-list": ("x[:, [2, 0, 1]] * 2 + x[:, :, [3]]", X),
    "tensor-index": ("x[0][:, x[1][0]]", [(4,), (2,)], ["float32", "int32"]),
    "operators": ("-x + x * 2 - x / 3 + x ** 2 + x // 0.3 + x % 0.3 + (+x)", X),
    "batch-arithmetic": ("x * (batch // 2 + batch % 2 + batch * 1.5 / batch)", X),
    "shape-arithmetic": ("x * (shape(x)[0] - 1) / shape(x)[1]", X),
    "integers": ("x[0] // 3 + x[0] % 3 - x[1] * 2", [(4,), (4,)], ["int32", "int32"]),
    "mixed-dtypes": ("x[0] * x[1] + pi", [(4,), (4,)], ["int32", "float32"]),
    "constants": ("x * scale + offset", X, None, {"scale": 2, "offset": [1.0, 2.0, 3.0, 4.0]}),
}


def _spec(expr, shapes, dtypes=None, constants=None) -> str:
    dtypes = dtypes or [None] * len(shapes)
    inputs = {f"x{i}": dict({"shape": list(s)}, **({"dtype": d} if d else {}))
              for i, (s, d) in enumerate(zip(shapes, dtypes))}
    layer = {"type": "Lambda" if len(shapes) == 1 else "Merge", "expr": expr,
             **({"constants": constants} if constants else {})}
    call = {"layer": layer, "in": list(inputs) if len(inputs) > 1 else "x0", "out": "y"}
    return json.dumps({"graphspec": 1, "models": {"m": {"inputs": inputs, "calls": [call],
                                                        "outputs": ["y"]}}})


def _feeds(model, seed=0):
    """Random feeds; integer inputs include negatives where the expression allows."""
    feeds = random_feeds(model, batch=4, seed=seed)
    rng = np.random.default_rng(seed)
    for name, value in feeds.items():
        if value.dtype.kind == "i" and name == "x0" and value.shape[1:] == (4,):
            feeds[name] = rng.integers(-7, 8, value.shape).astype(value.dtype)
    return feeds


@pytest.mark.parametrize("case", sorted(CASES))
def test_expression_exports_and_agrees(case):
    expr, shapes, *rest = CASES[case]
    graph = graphspec.loads(_spec(expr, shapes, *rest), seed=0)
    model = graph.model()
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    for batch_seed in (0, 1):   # two feeds: the second at another batch size
        feeds = _feeds(model, batch_seed)
        if batch_seed:
            feeds = {k: np.concatenate([v, v[:1]]) for k, v in feeds.items()}
        report = check_against_predict(model, proto, feeds)
        assert all(r["ok"] for r in report.values()), (case, report)


def test_every_function_has_a_case():
    used = set()
    for expr, *_ in CASES.values():
        used |= parse_expression(expr, {"x", "w", "scale", "offset"}).functions
    assert set(FUNCTIONS) - used == {"random_normal", "random_uniform"}


@pytest.mark.parametrize("expr, mean, std", [
    ("x * 0 + random_normal(shape(x), 1.0, 2.0)", 1.0, 2.0),
    ("x * 0 + random_uniform((batch, 50), -1.0, 3.0)", 1.0, 4 / 12 ** 0.5),
])
def test_random_functions_draw_the_asked_distribution(expr, mean, std):
    graph = graphspec.loads(_spec(expr, [(50,)]), seed=0)
    proto = to_onnx(graph.model())
    out = run_onnxruntime(proto, {"x0": np.zeros((400, 50), np.float32)})["y"]
    assert out.shape == (400, 50) and out.dtype == np.float32
    assert abs(out.mean() - mean) < 0.05 and abs(out.std() - std) < 0.05
    if "uniform" in expr:
        assert out.min() >= -1.0 and out.max() < 3.0
