"""Trainer defects of issue 15 and the Keras-like API of issue 16."""
import warnings

import numpy as np
import pytest

import graphspec
from graphspec.errors import InputError

SPEC = """
graphspec: 1
layers:
  hidden: {type: Dense, units: 4, activation: tanh}
  drop: {type: Dropout, rate: 0.3}
  out: {type: Dense, units: 2}
models:
  m:
    inputs: {x: {shape: [3]}}
    calls:
      - {layer: hidden, in: x, out: h}
      - {layer: drop, in: h, out: d}
      - {layer: out, in: d, out: y}
    outputs: [y]
  frozen:
    trainable: false
    inputs: {x: {shape: [3]}}
    calls: [{layer: hidden, in: x, out: y}]
    outputs: [y]
training:
  sgd_job: {model: m, loss: mse, optimizer: {type: sgd, learning_rate: 0.01, momentum: 0.5}}
  adam_job: {model: m, loss: mae, optimizer: adam, batch_size: 4}
  frozen_job: {model: frozen, loss: mse, optimizer: sgd}
  added_only:
    model: m
    added_losses: ["mean(y * y)"]
    optimizer: sgd
"""


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((n, 3)).astype(np.float32),
            "y": rng.standard_normal((n, 2)).astype(np.float32)}


def load(seed=0):
    return graphspec.loads(SPEC, seed=seed)


def test_learning_rate_alone_keeps_the_jobs_optimizer_type_and_hyper_parameters():
    graph = load()
    trainer = graph.trainer("sgd_job", optimizer={"learning_rate": 0.05})
    config = trainer.job.optimizer.get_config()
    assert config["type"] == "sgd" and config["momentum"] == 0.5
    assert config["learning_rate"] == 0.05
    assert graph.trainer("sgd_job", optimizer={"type": "adam"}).job.optimizer.TYPE == "adam"


def test_fit_without_job_after_a_named_job_uses_the_default_job():
    model = load().models["m"]
    model.fit(data(), job="adam_job", epochs=1, verbose=False, seed=0)
    assert model.trainer("adam_job").job.name == "adam_job"
    model.fit(data(), epochs=1, verbose=False, seed=0)
    assert model.trainer().job.name == "sgd_job"           # the first job of model m


def test_validation_split_of_one_is_a_clear_error():
    model = load().models["m"]
    with pytest.raises(InputError, match=r"validation_split must be in \[0, 1\), got 1.0"):
        model.fit(data(), validation_split=1.0, verbose=False, seed=0)


def test_fit_returns_a_keras_history():
    model = load().models["m"]
    history = model.fit(data(), epochs=3, batch_size=8, validation_split=0.25,
                        verbose=False, seed=0)
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "val_loss"}
    assert all(len(v) == 3 and isinstance(v[0], float) for v in history.history.values())
    assert history.params == {"epochs": 3, "batch_size": 8, "steps": 3}


def test_train_on_batch_without_targets_for_a_job_without_losses():
    graph = load()
    trainer = graph.trainer("added_only")
    logs = trainer.train_on_batch({"x": data()["x"]})
    assert np.isfinite(logs["loss"])
    assert np.isfinite(graph.models["m"].train_on_batch(data()["x"], job="added_only")["loss"])


def test_training_a_model_without_trainable_weights_warns():
    model = load().models["frozen"]
    with pytest.warns(UserWarning, match="no trainable weights"):
        model.fit(data()["x"], np.zeros((24, 4)), job="frozen_job", epochs=1, verbose=False,
                  seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load().models["m"].fit(data(), epochs=1, verbose=False, seed=0)


def test_an_option_error_names_the_option_not_a_spec_path():
    with pytest.raises(graphspec.GraphspecError, match=r"^--loss: unknown loss"):
        load().trainer("sgd_job", loss="msee")


def test_one_hot_labels_to_a_sparse_loss_suggest_categorical():
    model = load().models["m"]
    with pytest.raises(InputError, match="one-hot labels: use categorical_crossentropy"):
        model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
        model.fit(data()["x"], np.eye(2)[np.arange(24) % 2], epochs=1, verbose=False, seed=0)


def test_unknown_model_in_node_listing_is_an_error():
    with pytest.raises(InputError, match="no model 'nope'"):
        load().nodes(model="nope")
