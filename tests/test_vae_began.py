"""The worked training specs: a VAE with two entry points and BEGAN's stateful k."""
import numpy as np
import pytest
from gradcheck import check_model_gradients
from specs_util import SPECS

import graphspec


@pytest.fixture(scope="module")
def digits():
    sklearn = pytest.importorskip("sklearn.datasets")
    return (sklearn.load_digits().data / 16).astype(np.float32)


def test_vae_trains_end_to_end_and_its_decoder_runs_alone_with_the_trained_weights(digits):
    graph = graphspec.load(SPECS / "vae.yaml", seed=0)
    latent = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    decoder = graph.models["decoder"]
    before = decoder.predict(latent)["generated"]
    history = graph.models["vae"].fit({"image": digits}, {"reconstruction": digits}, seed=0,
                                      epochs=8, verbose=False)
    assert history["loss"][-1] < 0.75 * history["loss"][0]
    after = decoder.predict(latent)["generated"]
    assert np.abs(after - before).max() > 0.05           # training the vae moved the decoder
    w = {k: v.data for k, v in graph.weights().items()}
    hidden = np.maximum(latent @ w["decoder_hidden/kernel"] + w["decoder_hidden/bias"], 0)
    manual = 1 / (1 + np.exp(-(hidden @ w["decoder_output/kernel"] + w["decoder_output/bias"])))
    np.testing.assert_allclose(after, manual, rtol=1e-5, atol=1e-6)
    assert graph.layers["decoder_hidden"].inbound_nodes[1].model == "decoder"


def test_vae_gradients_flow_through_the_sampling_merge():
    graph = graphspec.load(SPECS / "vae.yaml", seed=0, dtype="float64",
                           params={"original_dim": 6, "intermediate_dim": 4})
    x = np.random.default_rng(0).uniform(0, 1, (3, 6))
    check_model_gradients(graph.models["vae"], {"image": x})   # same noise every call


def test_vae_kl_term_is_in_the_loss(digits):
    graph = graphspec.load(SPECS / "vae.yaml", seed=0, dtype="float64")
    trainer = graph.trainer()
    assert len(trainer.job.added_losses) == 1 and trainer.job.losses


def _batches(steps, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        real = (rng.standard_normal((32, 16)) * 0.5 + np.linspace(-1, 1, 16)).astype(np.float32)
        yield {"real": real, "z": rng.uniform(-1, 1, (32, 4)).astype(np.float32)}, rng


def test_began_k_moves_stays_in_unit_interval_and_is_saved(tmp_path):
    graph = graphspec.load(SPECS / "began.yaml", seed=0)
    d_step, g_step = graph.trainer("discriminator_step"), graph.trainer("generator_step")
    ks, measures = [], []
    for batch, rng in _batches(200):
        inputs, targets, _ = d_step.split_data(batch)
        logs = d_step.train_on_batch(inputs, targets, rng)
        g_step.train_on_batch(inputs, {}, rng)
        ks.append(logs["k"])
        measures.append(logs["M_global"])
        expected_m = logs["loss_real"] + abs(0.5 * logs["loss_real"] - logs["loss_fake"])
        assert logs["M_global"] == pytest.approx(expected_m, rel=1e-5)
    assert all(0.0 <= k <= 1.0 for k in ks)
    assert max(ks) > 0.05 and len(set(ks)) > 100                # k moved, step by step
    assert d_step.state["k"] == ks[-1]                          # visible after training
    graph.save_weights(tmp_path / "w.npz", extra=d_step.state_arrays())
    with np.load(tmp_path / "w.npz") as saved:
        assert float(saved["state/k"]) == pytest.approx(ks[-1])


def test_began_alternating_steps_freeze_the_other_network():
    graph = graphspec.load(SPECS / "began.yaml", seed=0)
    d_step, g_step = graph.trainer("discriminator_step"), graph.trainer("generator_step")
    batch, rng = next(_batches(1))
    inputs, targets, _ = d_step.split_data(batch)

    def snapshot():
        return {k: v.data.copy() for k, v in graph.weights().items()}

    def moved(before):
        return {k.split("/")[0] for k, v in graph.weights().items()
                if not np.array_equal(before[k], v.data)}
    before = snapshot()
    d_step.train_on_batch(inputs, targets, rng)
    assert moved(before) == {"d_encode", "d_decode"}
    before = snapshot()
    g_step.train_on_batch(inputs, {}, rng)
    assert moved(before) == {"g_hidden", "g_out"}
