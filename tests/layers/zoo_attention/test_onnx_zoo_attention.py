"""Every Layer zoo II attention/normalisation/preprocessing/noise layer exports to ONNX
and agrees with predict in onnxruntime (graphspec.interop.onnx_check's rule), with the
weights randomised so a dropped or transposed weight cannot pass."""
import json

import numpy as np
import pytest

import graphspec
from graphspec.interop.onnx_check import check_against_predict, random_feeds

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MHA = {"type": "MultiHeadAttention", "num_heads": 3, "key_dim": 4}

CASES = {
    "MHA-self": (MHA, [(5, 6), (5, 6)], 1),
    "MHA-key-value-dim-output-shape": (dict(MHA, value_dim=2, output_shape=[3, 2]),
                                       [(4, 6), (7, 5), (7, 3)], 1),
    "MHA-no-bias-causal-scores": (dict(MHA, use_bias=False, use_causal_mask=True,
                                       return_attention_scores=True), [(5, 6), (5, 6)], 2),
    "MHA-mask-causal": (dict(MHA, attention_mask=True, use_causal_mask=True),
                        [(5, 6), (6, 6), (5, 6)], 1),
    "MHA-unknown-steps": (dict(MHA, use_causal_mask=True), [(None, 6), (None, 6)], 1),
    "Attention-dot": ({"type": "Attention"}, [(4, 3), (5, 3)], 1),
    "Attention-dot-scale-causal-key": ({"type": "Attention", "use_scale": True,
                                        "use_causal_mask": True,
                                        "return_attention_scores": True},
                                       [(4, 3), (5, 2), (5, 3)], 2),
    "Attention-concat": ({"type": "Attention", "score_mode": "concat", "use_scale": True},
                         [(4, 3), (5, 3)], 1),
    "AdditiveAttention": ({"type": "AdditiveAttention", "use_causal_mask": True},
                          [(None, 3), (None, 3)], 1),
    "AdditiveAttention-no-scale": ({"type": "AdditiveAttention", "use_scale": False},
                                   [(4, 3), (6, 2), (6, 3)], 1),
    "GroupNormalization": ({"type": "GroupNormalization", "groups": 2}, [(None, 3, 4)], 1),
    "GroupNormalization-axis1-plain": ({"type": "GroupNormalization", "groups": -1,
                                        "axis": 1, "center": False, "scale": False},
                                       [(3, None)], 1),
    "UnitNormalization": ({"type": "UnitNormalization", "axis": [1, 2]}, [(3, 4)], 1),
    "LayerNormalization-rms": ({"type": "LayerNormalization", "rms_scaling": True,
                                "axis": [2, 1]}, [(3, 4)], 1),
    "Rescaling": ({"type": "Rescaling", "scale": [0.5, 2.0, -1.0], "offset": 1.5},
                  [(2, 3)], 1),
    "Normalization": ({"type": "Normalization", "axis": [1]}, [(3, 2)], 1),
    "Normalization-invert-all": ({"type": "Normalization", "axis": None, "invert": True},
                                 [(4,)], 1),
    "SpatialDropout1D": ({"type": "SpatialDropout1D", "rate": 0.5}, [(3, 4)], 1),
    "SpatialDropout2D": ({"type": "SpatialDropout2D", "rate": 0.5}, [(3, 3, 2)], 1),
    "GaussianNoise": ({"type": "GaussianNoise", "stddev": 0.3}, [(4,)], 1),
    "GaussianDropout": ({"type": "GaussianDropout", "rate": 0.3}, [(4,)], 1),
}


def one_call(layer, shapes, outputs):
    inputs = {f"x{i}": {"shape": list(s)} for i, s in enumerate(shapes)}
    outs = [f"y{i}" for i in range(outputs)]
    call = {"layer": layer, "in": list(inputs), "out": outs}
    return json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": inputs, "calls": [call], "outputs": outs}}})


def randomize(graph, seed=0):
    rng = np.random.default_rng(seed)
    for key, var in graph.weights().items():
        values = rng.standard_normal(var.data.shape) * 0.5
        if key.endswith("variance"):
            values = rng.uniform(0.5, 1.5, var.data.shape)
        var.data = values.astype(var.data.dtype)


@pytest.mark.parametrize("case", sorted(CASES))
def test_exports_and_agrees_in_onnxruntime(case):
    from graphspec.interop.onnx_export import to_onnx
    layer, shapes, outputs = CASES[case]
    graph = graphspec.loads(one_call(layer, shapes, outputs), seed=0)
    randomize(graph)
    model = graph.model()
    feeds = random_feeds(model, batch=3, seed=1)
    if layer.get("attention_mask"):          # a 0/1 mask with at least one key per row
        mask = (np.random.default_rng(2).random(feeds["x2"].shape) > 0.4)
        mask[..., 0] = True
        feeds["x2"] = mask.astype(np.float32)
    for opset in (13, 17):
        proto = to_onnx(model, opset=opset)
        onnx.checker.check_model(proto, full_check=True)
        report = check_against_predict(model, proto, feeds)
        assert all(r["ok"] for r in report.values()), report
