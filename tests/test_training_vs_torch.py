"""The real training path (spec -> graph -> trainer) against PyTorch: same initial
weights and data give the same losses and the same weights after several steps."""
import numpy as np
import pytest

import graphspec

torch = pytest.importorskip("torch")

SPEC = """
graphspec: 1
layers:
  hidden: {type: Dense, units: 7, activation: tanh}
  shared: {type: Dense, units: 5, activation: relu}
  out: {type: Dense, units: 3, activation: softmax}
models:
  net:
    inputs: {x: {shape: [4]}}
    calls:
      - {layer: hidden, in: x, out: h}
      - {layer: shared, in: h, out: s1}
      - {layer: {type: Dense, name: back, units: 7}, in: s1, out: b}
      - {layer: {type: Add, name: residual}, in: [h, b], out: hb}
      - {layer: shared, in: hb, out: s2}
      - {layer: out, in: s2, out: probs}
    outputs: [probs]
training:
  default:
    model: net
    loss: sparse_categorical_crossentropy
    optimizer: OPTIMIZER
"""

OPTIMIZERS = {
    # Keras adds epsilon to sqrt(v_hat * (1 - beta_2**t)), PyTorch to sqrt(v_hat): the same
    # rule up to epsilon's scaling, so a negligible epsilon makes them comparable.
    "adam": ("{type: adam, learning_rate: 0.01, epsilon: 1.0e-14}",
             lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-14)),
    "sgd_nesterov": ("{type: sgd, learning_rate: 0.1, momentum: 0.9, nesterov: true}",
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_shared_layer_training_matches_torch(name):
    spec, make_torch_opt = OPTIMIZERS[name]
    graph = graphspec.loads(SPEC.replace("OPTIMIZER", spec), seed=3, dtype="float64")
    trainer = graph.trainer()
    weights = graph.weights()
    layers = {}
    for layer in ("hidden", "shared", "back", "out"):
        lin = torch.nn.Linear(*weights[f"{layer}/kernel"].shape).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[f"{layer}/kernel"].data.T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[f"{layer}/bias"].data.copy()))
        layers[layer] = lin
    params = [p for lin in layers.values() for p in lin.parameters()]
    opt = make_torch_opt(params)
    rng = np.random.default_rng(0)
    for step in range(5):
        x = rng.standard_normal((8, 4))
        y = rng.integers(0, 3, 8)
        logs = trainer.train_on_batch({"x": x}, {"probs": y})
        opt.zero_grad()
        xt = torch.from_numpy(x)
        h = torch.tanh(layers["hidden"](xt))
        s1 = torch.relu(layers["shared"](h))
        s2 = torch.relu(layers["shared"](h + layers["back"](s1)))
        logits = layers["out"](s2)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
        loss.backward()
        opt.step()
        assert logs["loss"] == pytest.approx(loss.item(), rel=1e-10), f"step {step}"
    for layer, lin in layers.items():
        np.testing.assert_allclose(weights[f"{layer}/kernel"].data, lin.weight.detach().numpy().T,
                                   rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(weights[f"{layer}/bias"].data, lin.bias.detach().numpy(),
                                   rtol=1e-6, atol=1e-12)
