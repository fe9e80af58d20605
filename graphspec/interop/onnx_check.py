"""Run an exported model in onnxruntime and measure how far it is from ``predict``.

The agreement rule (used by the tests and ``graphspec export --check``): every value
``y`` of an output must satisfy ``|onnx - y| <= RTOL * |y| + ATOL_SCALE * max|output|``.
The absolute part scales with the output's largest magnitude because a value near zero
is usually the difference of larger terms (a dot product, a convolution), and float32
summation in another order (MLAS, Einsum) moves it by a few ulps *of those terms*.
"""
from __future__ import annotations

import numpy as np

RTOL = 1e-5
ATOL_SCALE = 1e-5
# max_rel is reported over the values at least this fraction of the output's largest
# magnitude (below it the absolute part of the rule is the meaningful one)
REPORT_FLOOR = 1e-2


def random_feeds(model, batch: int = 3, seed: int = 0, high: int = 4) -> dict:
    """Standard-normal float inputs and integer inputs in [0, high), keyed by name."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for tensor in model.inputs:
        shape = (batch,) + tuple(3 if d is None else d for d in tensor.shape[1:])
        if np.dtype(tensor.dtype).kind in "iu":
            feeds[tensor.name] = rng.integers(0, high, shape).astype(tensor.dtype)
        else:
            feeds[tensor.name] = rng.standard_normal(shape).astype(tensor.dtype)
    return feeds


def run_onnxruntime(proto, feeds: dict) -> dict:
    """Outputs of ``proto`` (a ModelProto) on ``feeds``, keyed by output name (CPU)."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1      # small graphs: threads cost more than they give
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def agreement(expected: dict, got: dict) -> dict:
    """Per output: max absolute difference, max relative difference (over the values of
    at least 1% of the largest magnitude) and whether the agreement rule holds (NaN on
    both sides counts as agreeing)."""
    report = {}
    for name, want in expected.items():
        want = np.asarray(want, dtype=np.float64)
        have = np.asarray(got[name], dtype=np.float64)
        if want.shape != have.shape:
            report[name] = {"max_abs": float("inf"), "max_rel": float("inf"), "ok": False,
                            "shape": (want.shape, have.shape)}
            continue
        # NaN where both give NaN agrees (a masked mean over a fully masked row is 0 / 0
        # in Keras, graphspec and ONNX alike); NaN on one side only does not
        both = np.isnan(want) & np.isnan(have)
        diff = np.where(both, 0.0, np.abs(have - want))
        want = np.where(both, 0.0, want)
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        floor = ATOL_SCALE * scale
        big = np.abs(want) >= REPORT_FLOOR * scale
        rel = float(np.max(diff[big] / np.abs(want[big]))) if np.any(big) else 0.0
        ok = bool(np.all(diff <= RTOL * np.abs(want) + floor))
        report[name] = {"max_abs": float(np.max(diff)) if diff.size else 0.0,
                        "max_rel": rel, "ok": ok}
    return report


def draws_noise(model) -> bool:
    """Whether ``model`` calls random_normal/random_uniform (then it agrees with predict
    in distribution only: onnxruntime draws from its own generator)."""
    from .onnx_expr import parse_layer_expression
    return any(layer.TYPE in ("Lambda", "Merge") and
               parse_layer_expression(layer).uses_random for layer in model.layers())


def check_against_predict(model, proto, feeds: dict) -> dict:
    """``agreement`` of onnxruntime's outputs with ``model.predict`` on ``feeds`` (NaN
    allowed: it must then be NaN in both)."""
    return agreement(model.predict(feeds, allow_nonfinite=True), run_onnxruntime(proto, feeds))
