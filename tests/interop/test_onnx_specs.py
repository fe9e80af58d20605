"""Every model of every shipped spec exports, passes the ONNX checker, and agrees with
``predict`` in onnxruntime (agreement rule: graphspec.interop.onnx_check: 1e-5 of each
value, plus 1e-5 of the output's largest magnitude for values near zero). Big specs run
at the reduced sizes the other tests use."""
import numpy as np
import pytest
from specs_util import SPECS

import graphspec
from graphspec.interop.onnx_check import check_against_predict, draws_noise, random_feeds
from graphspec.interop.onnx_export import to_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

VISION = {"image_size": 36, "vocab": 20, "question_length": 5, "embedding_dim": 4,
          "question_units": 4, "answers": 3}
REDUCED = {
    "vqa.yaml": VISION, "video_qa.yaml": dict(VISION, frames=2, video_units=4),
    "multi_io.yaml": {"vocab": 50, "headline_length": 6, "embedding_dim": 8},
    "siamese_lstm.yaml": {"steps": 5, "features": 4}, "inception.yaml": {"image_size": 9},
    "residual.yaml": {"image_size": 6}, "shared_vision.yaml": {"image_size": 8},
    "time_distributed.yaml": {"input_dim": 5, "steps": 3}, "mlp.yaml": {"input_dim": 12},
    "vin.yaml": {"grid": 4, "hidden": 3},
}
ALL_SPECS = sorted(p.name for p in SPECS.glob("*.yaml"))


def load(name):
    return graphspec.load(SPECS / name, seed=0, params=REDUCED.get(name))


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_shipped_spec_agrees_with_predict(spec):
    graph = load(spec)
    checked = 0
    for model in graph.models.values():
        proto = to_onnx(model)
        onnx.checker.check_model(proto, full_check=True)
        assert [i.name for i in proto.graph.input] == model.input_names
        assert [o.name for o in proto.graph.output] == model.output_names
        batch_dims = {i.type.tensor_type.shape.dim[0].dim_param for i in proto.graph.input}
        assert batch_dims == {"batch"}
        if draws_noise(model):
            continue        # test_noise_models below
        report = check_against_predict(model, proto, random_feeds(model, batch=3, seed=1))
        assert all(r["ok"] for r in report.values()), (model.name, report)
        checked += 1
    assert checked or spec == "shared_entry.yaml"


def test_vae_agrees_once_the_noise_is_scaled_away():
    """The sampling Merge exports as RandomNormalLike; with log-variance -200 its noise
    is multiplied by exp(-100) (0 in float32 arithmetic), so the rest must agree."""
    graph = load("vae.yaml")
    graph.layers["z_log_var_dense"].weights["kernel"].data[:] = 0
    graph.layers["z_log_var_dense"].weights["bias"].data[:] = -200
    model = graph.models["vae"]
    proto = to_onnx(model)
    assert "RandomNormalLike" in {n.op_type for n in proto.graph.node}
    report = check_against_predict(model, proto, random_feeds(model, batch=4, seed=2))
    assert all(r["ok"] for r in report.values()), report


def test_noise_entry_point_draws_standard_normal_noise_times_ten():
    """shared_entry's model_a and model_c: random_normal([batch, 10]) * 10, with the batch
    size taken at run time; within one onnxruntime session every run draws afresh."""
    import onnxruntime
    graph = load("shared_entry.yaml")
    for name in ("model_a", "model_c"):
        model = graph.models[name]
        session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        feeds = {model.input_names[0]: np.zeros((4000, 1), np.float32)}
        first, = session.run(None, feeds)
        second, = session.run(None, feeds)
        assert first.shape == (4000, 10) and first.dtype == np.float32
        assert abs(first.mean()) < 0.5 and 9.5 < first.std() < 10.5
        assert not np.array_equal(first, second)
        small, = session.run(None, {model.input_names[0]: np.zeros((3, 1), np.float32)})
        assert small.shape == (3, 10)


def test_shared_submodel_and_shared_layer_are_one_initializer_each():
    """shared_vision calls the vision model twice: its conv kernels are stored once."""
    graph = load("shared_vision.yaml")
    proto = to_onnx(graph.models["same_digit_classifier"])
    names = [i.name for i in proto.graph.initializer]
    assert names.count("conv_1/kernel_oihw") == 1 and names.count("conv_2/bias") == 1
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 4
    assert {n.input[1] for n in convs} == {"conv_1/kernel_oihw", "conv_2/kernel_oihw"}
    vin = to_onnx(load("vin.yaml").models["vin"])
    q_convs = [n for n in vin.graph.node if n.op_type == "Conv" and "q_conv" in n.input[1]]
    assert len(q_convs) == 10 and len({n.input[1] for n in q_convs}) == 1


def test_onnx_runs_at_another_batch_size():
    """The batch axis is symbolic: one exported file serves any batch size."""
    graph = load("vin.yaml")
    model = graph.models["vin"]
    proto = to_onnx(model)
    for batch in (1, 7):
        report = check_against_predict(model, proto, random_feeds(model, batch=batch, seed=3))
        assert all(r["ok"] for r in report.values()), report


@pytest.mark.parametrize("opset", [13, 21])
@pytest.mark.parametrize("spec", ["video_qa.yaml", "lambda_ops.yaml", "vin.yaml"])
def test_shipped_specs_at_the_lowest_and_highest_opset(spec, opset):
    graph = load(spec)
    for model in graph.models.values():
        proto = to_onnx(model, opset=opset)
        onnx.checker.check_model(proto, full_check=True)
        report = check_against_predict(model, proto, random_feeds(model, batch=2, seed=4))
        assert all(r["ok"] for r in report.values()), (model.name, report)
