"""The review's effective-trainable walk agrees with the trainer's on every shipped spec."""
import pytest
from specs_util import SPECS

from graphspec import api
from graphspec.review.walk import effective_layers, param_totals
from graphspec.train.trainer import trainable_weight_keys

CASES = [(spec.name, {}) for spec in sorted(SPECS.glob("*.yaml"))] + [
    ("container_trainable.yaml", {"encoder_trainable": a, "inner_trainable": b})
    for a in (True, False) for b in (True, False)]


@pytest.mark.parametrize("spec,params", CASES)
def test_trainable_weights_match_the_trainer(spec, params):
    graph = api.load(str(SPECS / spec), params=params, initialize=False)
    for model in graph.models.values():
        walked = {f"{name}/{w}" for name, (layer, trainable) in effective_layers(model).items()
                  if trainable for w, s in layer.weight_shapes.items() if s.trainable}
        assert walked == set(trainable_weight_keys(model)[0]), model.name


def test_frozen_sub_model_moves_its_params_to_non_trainable():
    spec = str(SPECS / "container_trainable.yaml")
    graph = api.load(spec, params={"encoder_trainable": False}, initialize=False)
    assert param_totals(graph.models["regressor"]) == {"total": 21, "trainable": 5,
                                                       "non_trainable": 16}
    assert param_totals(graph.models["encoder"]) == {"total": 16, "trainable": 0,
                                                     "non_trainable": 16}
