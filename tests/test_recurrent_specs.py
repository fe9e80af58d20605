"""Reference models with Embedding and LSTM: items 5, 6 and 10."""
import numpy as np
import pytest
from gradcheck import check_model_gradients
from specs_util import SPECS

import graphspec

SMALL_HEADLINES = {"vocab": 50, "headline_length": 10, "embedding_dim": 8}


def headline_data(n, seed):
    rng = np.random.default_rng(seed)
    words = rng.integers(1, 50, (n, 10))
    aux = rng.standard_normal((n, 5)).astype(np.float32)
    main = ((words < 25).mean(axis=1) > 0.5).astype(np.float32)[:, None]
    return {"main_input": words, "aux_input": aux, "main_output": main,
            "aux_output": main.copy()}


def test_multi_io_param_count_matches_keras():
    graph = graphspec.load(SPECS / "multi_io.yaml", initialize=False)
    assert graph.models["headline"].param_count() == (5_200_610, 0)


@pytest.mark.parametrize("job", ["default", "one_loss_for_all"])
def test_multi_io_trains_with_losses_per_output_and_weights(job):
    """Item 5: losses by output name, loss_weights main 1.0 / aux 0.2."""
    graph = graphspec.load(SPECS / "multi_io.yaml", seed=0, params=SMALL_HEADLINES)
    model = graph.models["headline"]
    trainer = graph.trainer(job)
    assert trainer.job.loss_weights == {"main_output": 1.0, "aux_output": 0.2}
    data = headline_data(256, 0)
    history = trainer.fit(data, epochs=6, batch_size=32, seed=0, verbose=False)
    assert history["loss"][-1] < history["loss"][0] - 0.05
    logs = history
    total = np.array(logs["main_output_loss"]) + 0.2 * np.array(logs["aux_output_loss"])
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)
    assert model.predict({k: data[k] for k in ("main_input", "aux_input")})[
        "aux_output"].shape == (256, 1)


def test_siamese_lstm_one_instance_two_nodes_one_set_of_weights():
    """Item 6: shared_lstm has nodes 0 and 1; swapping the inputs swaps the encodings."""
    graph = graphspec.load(SPECS / "siamese_lstm.yaml", seed=0, dtype="float64",
                           params={"steps": 5, "features": 4})
    lstm = graph.layers["shared_lstm"]
    assert [n.node_index for n in lstm.inbound_nodes] == [0, 1]
    assert lstm.input_shape_at(1) == (None, 5, 4) and lstm.output_at(1).name == "encoded_b"
    assert sorted(lstm.weights) == ["bias", "kernel", "recurrent_kernel"]
    model = graph.models["siamese"]
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 4))
    from graphspec.autodiff import Variable
    from graphspec.layers import CallContext
    values = model.run([Variable(a), Variable(b)], CallContext())
    swapped = model.run([Variable(b), Variable(a)], CallContext())
    enc_a, enc_b = model.tensor("encoded_a").slot, model.tensor("encoded_b").slot
    np.testing.assert_array_equal(values[enc_a].data, swapped[enc_b].data)
    check_model_gradients(model, {"tweet_a": a, "tweet_b": b}, max_entries=15)


def test_siamese_full_size_param_count():
    graph = graphspec.load(SPECS / "siamese_lstm.yaml", initialize=False)
    assert graph.models["siamese"].param_count() == (82_305, 0)


SMALL_VQA = {"image_size": 36, "vocab": 20, "question_length": 5, "embedding_dim": 4,
             "question_units": 4, "answers": 3}


def test_vqa_full_size_validates_and_counts_like_keras():
    """Item 10 at full size: shapes and Keras' parameter counts, no weights allocated."""
    graph = graphspec.load(SPECS / "vqa.yaml", initialize=False)
    vqa = graph.models["vqa"]
    assert vqa.param_count() == (165_077_800, 0)
    assert vqa.tensor("encoded_image").shape == (None, 160_000)
    video = graphspec.load(SPECS / "video_qa.yaml", initialize=False).models["video_qa"]
    assert video.param_count() == (169_436_968, 0)
    assert video.tensor("encoded_frames").shape == (None, 100, 160_000)


def test_vqa_reduced_runs_and_video_qa_reuses_its_trained_parts(tmp_path):
    graph = graphspec.load(SPECS / "vqa.yaml", seed=0, params=SMALL_VQA)
    rng = np.random.default_rng(0)
    data = {"image_input": rng.random((6, 36, 36, 3)).astype(np.float32),
            "question_input": rng.integers(0, 20, (6, 5)),
            "answer_probs": rng.integers(0, 3, 6)}
    graph.models["vqa"].fit(data, epochs=1, batch_size=3, seed=0, verbose=False)
    graph.save_weights(tmp_path / "vqa.npz")
    video = graphspec.load(SPECS / "video_qa.yaml", seed=1,
                           params=dict(SMALL_VQA, frames=2, video_units=4))
    video.load_weights(tmp_path / "vqa.npz", strict=False)
    for key in ("vision_conv_7/kernel", "question_lstm/recurrent_kernel",
                "question_embedding/embeddings"):
        np.testing.assert_array_equal(video.weights()[key].data, graph.weights()[key].data)
    clip = rng.random((2, 2, 36, 36, 3)).astype(np.float32)
    out = video.models["video_qa"].predict({"video_input": clip,
                                            "video_question_input": data["question_input"][:2]})
    assert out["answer_probs"].shape == (2, 3)
    np.testing.assert_allclose(out["answer_probs"].sum(axis=1), 1, rtol=1e-5)
    encoded = video.models["vision_model"].predict(clip.reshape(-1, 36, 36, 3))["image_features"]
    assert encoded.shape == (4, 256)
