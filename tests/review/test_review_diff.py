"""graphspec diff over shipped specs and edited copies: one test per kind of change."""
import json

from review_util import edited, shipped

from graphspec.review.diff import diff_specs

MLP = "mlp.yaml"
MLP_PARAMS = 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10     # 55,050


def test_comments_formatting_and_explicit_defaults_are_no_change(tmp_path):
    new = edited(tmp_path, MLP,
                 ("# Reference item 1", "# A reworded comment\n# Reference item 1"),
                 ("dense_1: {type: Dense, units: 64, activation: relu}",
                  "dense_1:\n    activation: relu   # key order and block style\n"
                  "    units: 64\n    type: Dense\n    use_bias: true"),
                 ("{layer: dense_1, in: pixels, out: hidden_1}",
                  "{layer: dense_1, in: pixels, out: first_hidden}"),
                 ("{layer: dense_2, in: hidden_1, out: hidden_2}",
                  "{layer: dense_2, in: first_hidden, out: hidden_2}"))
    diff = diff_specs(shipped(MLP), new)
    assert not diff.has_model_changes
    assert diff.models == [] and diff.training == [] and not any(diff.layers.values())
    assert "no model change" in diff.to_text()


def test_layer_added_and_removed(tmp_path):
    new = edited(tmp_path, MLP,
                 ("  dense_2: {type: Dense, units: 64, activation: relu}\n",
                  "  wide: {type: Dense, units: 32, activation: tanh}\n"),
                 ("{layer: dense_2, in: hidden_1, out: hidden_2}",
                  "{layer: wide, in: hidden_1, out: hidden_2}"))
    diff = diff_specs(shipped(MLP), new)
    layers = diff.layers
    assert layers["added"] == [{"name": "wide", "type": "Dense",
                                "args": {"units": 32, "activation": "tanh"},
                                "params": 64 * 32 + 32}]
    assert layers["removed"] == [{"name": "dense_2", "type": "Dense", "params": 64 * 64 + 64}]
    assert layers["renamed"] == []
    mlp = diff.models[0]
    assert [n["node"] for n in mlp["nodes"]["added"]] == ["wide"]
    assert [n["node"] for n in mlp["nodes"]["removed"]] == ["dense_2"]
    assert mlp["nodes"]["shapes"] == []   # hidden_2 is now a different node's output
    assert mlp["params"]["delta"]["total"] == (64 * 32 + 32 + 32 * 10 + 10) - \
        (64 * 64 + 64 + 64 * 10 + 10)
    assert diff.has_model_changes


def test_rename_is_recognised_by_type_config_and_place(tmp_path):
    new = edited(tmp_path, MLP,
                 ("dense_1: {", "encoder_in: {"), ("dense_2: {", "encoder_mid: {"),
                 ("layer: dense_1,", "layer: encoder_in,"),
                 ("layer: dense_2,", "layer: encoder_mid,"))
    diff = diff_specs(shipped(MLP), new)
    assert diff.layers["renamed"] == [
        {"old": "dense_1", "new": "encoder_in", "type": "Dense"},
        {"old": "dense_2", "new": "encoder_mid", "type": "Dense"}]
    assert diff.layers["added"] == diff.layers["removed"] == []
    assert diff.models == []          # same nodes, same wiring, same params
    assert diff.has_model_changes     # a rename still changes the weight names


def test_rename_with_a_config_change_is_remove_and_add(tmp_path):
    new = edited(tmp_path, MLP, ("dense_2: {type: Dense, units: 64,",
                                 "dense_b: {type: Dense, units: 65,"),
                 ("layer: dense_2,", "layer: dense_b,"))
    diff = diff_specs(shipped(MLP), new)
    assert diff.layers["renamed"] == []
    assert [a["name"] for a in diff.layers["added"]] == ["dense_b"]
    assert [r["name"] for r in diff.layers["removed"]] == ["dense_2"]


def test_two_identical_candidates_in_different_places_stay_apart(tmp_path):
    # dense_1 and dense_2 have the same config; renaming both is found link by link
    # because each keeps its own place (its inputs and position), never swapped.
    new = edited(tmp_path, MLP, ("dense_1: {", "b: {"), ("dense_2: {", "a: {"),
                 ("layer: dense_1,", "layer: b,"), ("layer: dense_2,", "layer: a,"))
    pairs = {(r["old"], r["new"]) for r in diff_specs(shipped(MLP), new).layers["renamed"]}
    assert pairs == {("dense_1", "b"), ("dense_2", "a")}


def test_config_change_per_argument_with_shape_ripple_and_params(tmp_path):
    new = edited(tmp_path, MLP, ("dense_1: {type: Dense, units: 64, activation: relu}",
                                 "dense_1: {type: Dense, units: 128, activation: elu}"))
    diff = diff_specs(shipped(MLP), new)
    assert diff.layers["config"] == [
        {"layer": "dense_1", "arg": "units", "old": 64, "new": 128},
        {"layer": "dense_1", "arg": "activation", "old": "relu", "new": "elu"}]
    mlp = diff.models[0]
    assert mlp["nodes"]["shapes"] == [{"tensor": "hidden_1", "node": "dense_1",
                                       "old": "(None, 64)", "new": "(None, 128)"}]
    new_total = 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert mlp["params"]["old"]["total"] == MLP_PARAMS
    assert mlp["params"]["new"] == {"total": new_total, "trainable": new_total,
                                    "non_trainable": 0}
    assert mlp["params"]["delta"]["total"] == new_total - MLP_PARAMS
    assert "dense_1.units  64 → 128" in diff.to_text()


def test_trainable_change_through_a_sub_model():
    spec = shipped("container_trainable.yaml")
    diff = diff_specs(spec, spec, params_new={"encoder_trainable": False})
    assert diff.params == [{"name": "encoder_trainable", "old": True, "new": False}]
    assert diff.layers["trainable"] == []      # the layer's own flag did not change
    by_name = {m["name"]: m for m in diff.models}
    assert by_name["encoder"]["trainable"] == [{"old": True, "new": False}]
    for model in ("encoder", "regressor"):
        assert by_name[model]["effective_trainable"] == [
            {"layer": "inner", "old": True, "new": False}]
    assert by_name["regressor"]["trainable"] == []
    assert by_name["regressor"]["params"]["new"] == {"total": 21, "trainable": 5,
                                                     "non_trainable": 16}
    assert by_name["regressor"]["params"]["delta"] == {"total": 0, "trainable": -16,
                                                       "non_trainable": 16}
    text = diff.to_text()
    assert "effective trainable: inner  trainable → frozen" in text


def test_own_trainable_flag_of_a_layer():
    spec = shipped("container_trainable.yaml")
    diff = diff_specs(spec, spec, params_new={"inner_trainable": False})
    assert diff.layers["trainable"] == [{"layer": "inner", "old": True, "new": False}]


def test_inputs_and_outputs_added_removed_and_changed(tmp_path):
    new = edited(tmp_path, MLP,
                 ("      pixels: {shape: [\"${input_dim}\"]}",
                  "      pixels: {shape: [\"${input_dim}\"]}\n      extra: {shape: [3]}"),
                 ("outputs: [digit]", "outputs: [hidden_2, digit]"),
                 ("units: 10, activation: softmax", "units: 5, activation: softmax"))
    diff = diff_specs(shipped(MLP), new, params_new={"input_dim": 8})
    mlp = diff.models[0]
    assert mlp["inputs"]["added"] == [{"name": "extra", "shape": "(None, 3)",
                                       "dtype": "float32"}]
    assert mlp["inputs"]["changed"] == [{"name": "pixels", "old": "(None, 784) float32",
                                         "new": "(None, 8) float32"}]
    assert mlp["outputs"]["added"][0]["name"] == "hidden_2"
    assert mlp["outputs"]["changed"] == [{"name": "digit", "old": "(None, 10) float32",
                                          "new": "(None, 5) float32"}]
    assert mlp["outputs"]["removed"] == [] and mlp["inputs"]["removed"] == []


def test_output_shape_ripple_from_set_new():
    spec = shipped("shared_vision.yaml")
    diff = diff_specs(spec, spec, params_new={"image_size": 29})
    vision = next(m for m in diff.models if m["name"] == "vision")
    assert [(s["tensor"], s["old"], s["new"]) for s in vision["nodes"]["shapes"]] == [
        ("c1", "(None, 25, 25, 64)", "(None, 27, 27, 64)"),
        ("c2", "(None, 23, 23, 64)", "(None, 25, 25, 64)"),
        ("pooled", "(None, 11, 11, 64)", "(None, 12, 12, 64)")]   # features: an output
    assert vision["outputs"]["changed"] == [{"name": "features", "old": "(None, 7744) float32",
                                             "new": "(None, 9216) float32"}]
    classifier = next(m for m in diff.models if m["name"] == "same_digit_classifier")
    assert classifier["params"]["delta"]["total"] == 2 * (9216 - 7744)   # same_digit kernel


def test_sharing_changes(tmp_path):
    new = edited(tmp_path, MLP, ("{layer: predictions, in: hidden_2, out: digit}",
                                 "{layer: dense_2, in: hidden_2, out: hidden_3}\n"
                                 "      - {layer: predictions, in: hidden_3, out: digit}"))
    diff = diff_specs(shipped(MLP), new)
    mlp = diff.models[0]
    assert mlp["sharing"] == [{"layer": "dense_2", "old": 1, "new": 2, "now": "shared"}]
    assert [n["node"] for n in mlp["nodes"]["added"]] == ["dense_2[1]"]
    assert mlp["nodes"]["rewired"] == [{"node": "predictions",
                                        "old": ["hidden_2 from dense_2"],
                                        "new": ["hidden_3 from dense_2[1]"]}]
    assert mlp["params"]["delta"]["total"] == 0          # a shared layer adds no weights
    back = diff_specs(new, shipped(MLP)).models[0]
    assert back["sharing"] == [{"layer": "dense_2", "old": 2, "new": 1, "now": "not shared"}]


def test_sub_model_sharing_and_model_filter(tmp_path):
    new = edited(tmp_path, "shared_vision.yaml",
                 ("- {layer: vision, in: digit_b, out: features_b}",
                  "- {layer: flatten, in: digit_b, out: features_b}"))
    diff = diff_specs(shipped("shared_vision.yaml"), new, model="same_digit_classifier")
    assert [m["name"] for m in diff.models] == ["same_digit_classifier"]
    entry = diff.models[0]
    assert entry["sharing"] == [{"layer": "vision", "old": 2, "new": 1, "now": "not shared"}]
    assert [n["node"] for n in entry["nodes"]["removed"]] == ["vision[1]"]
    assert [n["node"] for n in entry["nodes"]["added"]] == ["flatten"]
    assert entry["nodes"]["shapes"] == [{"tensor": "both", "node": "join",
                                         "old": "(None, 15488)", "new": "(None, 8473)"}]
    assert [c["layer"] for c in diff.layers["config"]] == []


def test_models_added_and_removed_and_training_jobs(tmp_path):
    new = edited(tmp_path, MLP, ("    outputs: [digit]\n",
                                 "    outputs: [digit]\n  trunk:\n    inputs:\n"
                                 "      x: {shape: [64]}\n    calls:\n"
                                 "      - {layer: dense_2, in: x, out: y}\n"
                                 "    outputs: [y]\n"),
                 ("learning_rate: 0.003", "learning_rate: 0.001"))
    diff = diff_specs(shipped(MLP), new)
    added = next(m for m in diff.models if m["name"] == "trunk")
    assert added["status"] == "added" and added["params"]["total"] == 64 * 64 + 64
    assert diff.training == [{"job": "default", "status": "changed", "changes": [
        {"key": "optimizer.learning_rate", "old": 0.003, "new": 0.001}]}]
    removed = diff_specs(new, shipped(MLP))
    assert [m["status"] for m in removed.models] == ["removed"]


def test_json_output_round_trips(tmp_path):
    new = edited(tmp_path, MLP, ("units: 10,", "units: 12,"))
    data = json.loads(diff_specs(shipped(MLP), new).to_json())
    assert data["changed"] is True
    assert data["layers"]["config"] == [{"layer": "predictions", "arg": "units",
                                         "old": 10, "new": 12}]
    assert data["models"][0]["params"]["delta"]["total"] == 2 * 64 + 2


def test_markdown_is_one_table_and_escapes_spec_text(tmp_path):
    new = edited(tmp_path, MLP, ("  input_dim: 784", "  input_dim: 784\n  note: plain"))
    newer = edited(tmp_path, MLP, ("  input_dim: 784",
                                   "  input_dim: 784\n  note: \"<b>|x</b> @org/team\""),
                   name="newer.yaml")
    diff = diff_specs(new, newer)
    assert not diff.has_model_changes       # an unused param changes no model
    markdown = diff.to_markdown()
    assert "&lt;b&gt;\\|x&lt;/b&gt; &#64;org/team" in markdown
    assert "<b>" not in markdown and "@org" not in markdown
    lines = diff_specs(shipped(MLP), edited(tmp_path, MLP, ("units: 10,", "units: 12,"),
                                            name="m2.yaml")).to_markdown().splitlines()
    assert lines[2] == "| | change | where | before | after |"
    assert "| **layers** | config | `predictions.units` | 10 | 12 |" in lines
    assert all(line.count("|") - line.count("\\|") == 6 for line in lines[2:])


BIDIRECTIONAL = """
graphspec: 1
layers:
  enc: {type: LSTM, units: 4, return_sequences: true}
  bi: {type: Bidirectional, layer: enc}
  head: {type: Dense, units: 2}
models:
  m:
    inputs:
      x: {shape: [5, 3]}
    calls:
      - {layer: bi, in: x, out: h}
      - {layer: head, in: h, out: y}
    outputs: [y]
"""


def test_wrapper_and_wrapped_layer_renamed_together(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(BIDIRECTIONAL)
    new = tmp_path / "new.yaml"
    new.write_text(BIDIRECTIONAL.replace("enc:", "encoder:").replace("layer: enc}",
                   "layer: encoder}").replace("bi:", "both:").replace("layer: bi,", "layer: both,"))
    diff = diff_specs(old, new)
    assert {(r["old"], r["new"]) for r in diff.layers["renamed"]} == {
        ("bi", "both"), ("enc", "encoder"), ("backward_enc", "backward_encoder")}
    assert diff.layers["added"] == diff.layers["removed"] == diff.layers["config"] == []
    assert diff.models == []


def test_model_option_narrows_layers_models_and_jobs(tmp_path):
    new = edited(tmp_path, "shared_vision.yaml",
                 ("conv_1: {type: Conv2D, filters: 64,", "conv_1: {type: Conv2D, filters: 32,"),
                 ("activation: sigmoid", "activation: tanh"))
    whole = diff_specs(shipped("shared_vision.yaml"), new)
    assert [c["layer"] for c in whole.layers["config"]] == ["conv_1", "same_digit"]
    vision = diff_specs(shipped("shared_vision.yaml"), new, model="vision")
    assert [c["layer"] for c in vision.layers["config"]] == ["conv_1"]
    assert [m["name"] for m in vision.models] == ["vision"]
    assert vision.training == []
    assert vision.models[0]["params"]["delta"]["total"] == -(32 * 9 + 32) - 32 * 9 * 64


def test_text_output_escapes_control_characters(tmp_path):
    old = edited(tmp_path, MLP, ("  input_dim: 784", "  input_dim: 784\n  note: a"))
    new = edited(tmp_path, MLP, ("  input_dim: 784", '  input_dim: 784\n  note: "\\e[2Jx"'),
                 name="new.yaml")
    text = diff_specs(old, new).to_text()
    assert "\x1b" not in text and "param: note  a → \\x1b[2Jx" in text


INLINE = """
graphspec: 1
models:
  m:
    inputs:
      x: {shape: [4]}
    calls:
      - {layer: {type: Dense, units: 8, activation: relu}, in: x, out: h}
      - {layer: {type: Dense, units: 3}, in: h, out: y}
    outputs: [y]
"""


def test_inline_layer_inserted_first_shifts_automatic_names_into_renames(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(INLINE)
    new = tmp_path / "new.yaml"
    new.write_text(INLINE.replace("      - {layer: {type: Dense, units: 8,",
                                  "      - {layer: {type: Dense, units: 5}, in: x, out: x5}\n"
                                  "      - {layer: {type: Dense, units: 8,")
                   .replace("in: x, out: h}", "in: x5, out: h}"))
    diff = diff_specs(old, new)
    assert [(r["old"], r["new"]) for r in diff.layers["renamed"]] == [
        ("dense_1", "dense_2"), ("dense_2", "dense_3")]
    assert [a["name"] for a in diff.layers["added"]] == ["dense_1"]
    assert diff.layers["config"] == [] and diff.layers["removed"] == []
