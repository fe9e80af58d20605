"""Pictures of every shipped spec, read back by Graphviz itself (``dot -Tjson0``) and
checked against the compiled graph: one box per node plus one per input, one cluster
per entry point and per sub-model call, one fill colour per shared instance."""
import json
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from specs_util import SPECS, write_spec

import graphspec
from graphspec.graph.model import Model
from graphspec.viz import graphviz
from graphspec.viz.dot import scene_to_dot
from graphspec.viz.graph_picture import graph_text, plot_graph
from graphspec.viz.mermaid import scene_to_mermaid
from graphspec.viz.scene import Box, Cluster, Edge, Scene
from graphspec.cli.plot_commands import plot

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (CI installs it)")

# The shipped specs at sizes whose shapes read like the real thing; VQA and video QA
# reduced as in test_recurrent_specs (full size compiles too, but reads the same).
SMALL = {"vqa.yaml": {"image_size": 36, "vocab": 20, "question_length": 5},
         "video_qa.yaml": {"image_size": 36, "vocab": 20, "question_length": 5, "frames": 2}}
ALL_SPECS = sorted(p.name for p in SPECS.glob("*.yaml"))


def load(name):
    return graphspec.load(SPECS / name, params=SMALL.get(name), initialize=False)


def expected_counts(graph):
    """(boxes, clusters, edges) the all-models picture must have, counted on the graph."""
    def calls(model):              # (leaf calls, sub-model calls, tensors consumed)
        leaves = subs = consumed = 0
        for node in model.nodes:
            if isinstance(node.layer, Model):
                inner = calls(node.layer)
                leaves, subs, consumed = leaves + inner[0], subs + 1 + inner[1], \
                    consumed + inner[2]
            else:
                leaves, consumed = leaves + 1, consumed + len(node.input_tensors)
        return leaves, subs, consumed
    totals = [calls(m) for m in graph.models.values()]
    return (sum(t[0] for t in totals) + sum(len(m.inputs) for m in graph.models.values()),
            len(graph.models) + sum(t[1] for t in totals), sum(t[2] for t in totals))


def graphviz_reading(dot_text):
    """Graphviz's own parse of the DOT text: boxes by id, clusters, visible edges."""
    done = subprocess.run(["dot", "-Tjson0"], input=dot_text.encode(), capture_output=True,
                          timeout=60, check=True)
    data = json.loads(done.stdout)
    objects = data["objects"]
    boxes = {o["name"]: o for o in objects if "nodes" not in o and "subgraphs" not in o
             and not o["name"].startswith(("cluster", "%"))}
    clusters = [o for o in objects if o["name"].startswith("cluster_")]
    edges = [e for e in data.get("edges", []) if e.get("style") != "invis"]
    for edge in edges:
        edge["tail"], edge["head"] = objects[edge["tail"]]["name"], objects[edge["head"]]["name"]
    return boxes, clusters, edges


def title(box) -> str:
    return re.search(r"<B>(.*?)</B>", box["label"]).group(1)


@needs_dot
@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_shipped_spec_draws_one_box_per_node_and_one_cluster_per_model(name, tmp_path):
    graph = load(name)
    plot_graph(graph, tmp_path / "graph.dot")
    plot_graph(graph, tmp_path / "graph.svg")
    svg = (tmp_path / "graph.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    boxes, clusters, edges = graphviz_reading((tmp_path / "graph.dot").read_text())
    n_boxes, n_clusters, n_edges = expected_counts(graph)
    assert (len(boxes), len(clusters), len(edges)) == (n_boxes, n_clusters, n_edges)
    entry = [c for c in clusters if "(model)" in c["label"]]
    assert [re.search(r"<B>(.*?)</B>", c["label"]).group(1) for c in entry] == \
        list(graph.models)
    # Shared instances: every box of one instance has the same fill, distinct per instance.
    fills = {}
    for box in boxes.values():
        if box["name"].startswith("n"):
            fills.setdefault(title(box), set()).add(box["fillcolor"])
    for layer_name, colours in fills.items():
        layer = graph.layers[layer_name]
        assert len(colours) == 1, layer_name
        assert (colours == {"#ffffff"}) == (len(layer.inbound_nodes) < 2), layer_name
    shared = [next(iter(c)) for c in fills.values() if c != {"#ffffff"}]
    assert len(shared) == len(set(shared))
    # Every model output is marked on the box that produces it.
    for model in graph.models.values():
        for tensor in model.outputs:
            marker = re.compile(rf"output: {tensor.name}( \(out #\d+\))?</B>")
            assert any(marker.search(b["label"]) for b in boxes.values())


@needs_dot
def test_shared_vision_submodel_calls_are_clusters_of_one_colour_with_ordered_inputs():
    graph = load("shared_vision.yaml")
    boxes, clusters, edges = graphviz_reading(graph_text(graph, "dot"))
    calls = [c for c in clusters if "sub-model" in c["label"]]
    assert len(calls) == 2 and "node 0 of 2" in calls[0]["label"] \
        and "node 1 of 2" in calls[1]["label"]
    assert calls[0]["fillcolor"] == calls[1]["fillcolor"] != "#f4f4f4"
    join = next(name for name, b in boxes.items() if title(b) == "join")
    assert boxes[join]["ordering"] == "in"
    assert [e["label"] for e in edges if e["head"] == join] == \
        ["#0 features_a", "#1 features_b"]
    assert sum(title(b) == "conv_1" for b in boxes.values()) == 3   # entry point + 2 calls


@needs_dot
def test_one_model_of_a_shared_layer_shows_its_node_index_and_the_legend():
    graph = load("shared_entry.yaml")
    text = graph_text(graph, "dot", model="model_b")
    boxes, clusters, _ = graphviz_reading(text)
    assert len(boxes) == 2 and len(clusters) == 1
    times10 = next(b for b in boxes.values() if title(b) == "times10")
    assert "Lambda \u00b7 node 1 of 3" in times10["label"]
    assert times10["peripheries"] == "2"                     # the model's output
    assert "<I>x * 10</I>" in times10["label"]              # what the Lambda computes
    assert "times10 (Lambda): one instance, 3 calls: model_a (node 0), model_b (node 1), " \
        "scale_by_10 (node 2); 1 of them drawn here" in text


@needs_dot
def test_png_of_the_vae(tmp_path):
    plot_graph(load("vae.yaml"), tmp_path / "vae.png")
    data = (tmp_path / "vae.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 300 < width < 3000 and 300 < height < 3000


@pytest.mark.parametrize("name", ALL_SPECS)
def test_mermaid_has_the_same_boxes_and_subgraphs(name):
    graph = load(name)
    text = graph_text(graph, "mmd")
    n_boxes, n_clusters, n_edges = expected_counts(graph)
    assert len(re.findall(r"^\s+[ni]\d+[\[(]", text, re.M)) == n_boxes
    assert len(re.findall(r"^\s+subgraph cluster_\d+ ", text, re.M)) == n_clusters
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("subgraph ") for line in lines) == lines.count("end")
    assert len(re.findall(r"^  [ni]\d+ -->", text, re.M)) == n_edges


HOSTILE = 'a"b<c>&d{e}[f]|g;h#i\\N\\G`j\nk\u202el'


def hostile_scene():
    box = Box("n0", HOSTILE, HOSTILE, instance=None, out_shapes=[(None, 2)],
              outputs=[HOSTILE])
    layer = Box("n1", HOSTILE, "Dense", instance=object(), in_shapes=[(None, 2), (None, 2)],
                out_shapes=[(None, 4)], fill="#8dd3c7")
    inner = Cluster("cluster_1", HOSTILE, HOSTILE, entry_point=False, items=[layer])
    outer = Cluster("cluster_0", HOSTILE, "model", entry_point=True, items=[box, inner])
    edges = [Edge("n0", "n1", HOSTILE, 0), Edge("n0", "n1", HOSTILE, 1)]
    return Scene(HOSTILE, [outer], edges, [("#8dd3c7", HOSTILE)])


@needs_dot
def test_hostile_names_stay_labels_in_dot():
    text = scene_to_dot(hostile_scene())
    boxes, clusters, edges = graphviz_reading(text)       # Graphviz parses it
    assert sorted(boxes) == ["n0", "n1"] and len(clusters) == 2 and len(edges) == 2
    shown = 'a&quot;b&lt;c&gt;&amp;d{e}[f]|g;h#i\\\\N\\\\G`j\\\\x0ak\\\\u202el'
    assert f"<B>{shown}</B>" in boxes["n0"]["label"]
    assert edges[0]["label"] == f"#0 {shown}"
    done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True,
                          timeout=60, check=True)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", done.stdout.decode())
    drawn = 'a&quot;b&lt;c&gt;&amp;d{e}[f]|g;h#i\\N\\G`j\\x0ak\\u202el'   # \N, \G literal
    hostile = [t for t in texts if "h#i" in t]
    assert len(hostile) >= 6 and all(drawn in t for t in hostile) and f"#0 {drawn}" in texts


def test_hostile_names_are_entity_coded_in_mermaid():
    text = scene_to_mermaid(hostile_scene())
    labels = re.findall(r'"([^"\n]*)"', text)
    assert len(labels) >= 8
    for label in labels:
        bare = re.sub(r"</?b>|<br>|#\d+;", "", label)
        assert not set(bare) & set('"<>&{}[]|;`\\'), label
    assert "#34;" in text and "#60;" in text and "#92;x0ak" in text
    assert len(text.splitlines()) == len(text.split("\n")) - 1   # no line from a name


def run_plot(args):
    result = CliRunner().invoke(plot, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_missing_dot_is_one_line_and_text_still_works(monkeypatch, tmp_path):
    monkeypatch.setattr(graphviz, "find_dot", lambda: None)
    out = tmp_path / "g.svg"
    result = run_plot([SPECS / "mlp.yaml", "-o", out])
    assert result.exit_code == 1 and not out.exists()
    assert result.output == (
        f"error: graphspec plot -o {out} needs Graphviz's dot program (Debian/Ubuntu: "
        "apt-get install graphviz; macOS: brew install graphviz), or write .dot / .mmd "
        "text with -o graph.dot\n")
    for name in ("g.dot", "g.gv", "g.mmd"):
        assert run_plot([SPECS / "mlp.yaml", "-o", tmp_path / name]).exit_code == 0
    assert (tmp_path / "g.gv").read_text().startswith("digraph")
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart")


def fake_dot(tmp_path, body):
    script = tmp_path / "fake-dot"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_dot_failure_is_reduced_to_one_line(monkeypatch, tmp_path):
    program = fake_dot(tmp_path, "echo '' >&2; echo 'Error: <stdin>: syntax error in line 3' "
                                 ">&2; echo 'more noise' >&2; exit 1")
    monkeypatch.setattr(graphviz, "find_dot", lambda: program)
    result = run_plot([SPECS / "mlp.yaml", "-o", tmp_path / "g.png"])
    assert result.exit_code == 1
    assert result.output == (f"error: Graphviz's dot could not draw {tmp_path / 'g.png'}: "
                             "Error: <stdin>: syntax error in line 3\n")
    assert not (tmp_path / "g.png").exists()


def test_dot_that_hangs_is_stopped(monkeypatch, tmp_path):
    monkeypatch.setattr(graphviz, "find_dot", lambda: fake_dot(tmp_path, "exec sleep 30"))
    with pytest.raises(graphspec.errors.InputError, match="took longer than 0.3 s"):
        graphviz.render("digraph {}", "svg", "g.svg", timeout=0.3)


def test_plot_refuses_an_output_on_the_spec_and_unknown_extensions(tmp_path):
    spec = write_spec(tmp_path, (SPECS / "mlp.yaml").read_text())
    before = spec.read_bytes()
    alias = tmp_path / "alias.dot"
    alias.symlink_to(spec)
    for target in (spec, alias):
        result = run_plot([spec, "-o", target])
        assert result.exit_code == 2 and "name the same file" in result.output
    assert spec.read_bytes() == before
    result = run_plot([spec, "-o", tmp_path / "g.txt"])
    assert result.exit_code == 1 and "--format" in result.output
    assert run_plot([spec, "-o", tmp_path / "g.txt", "--format", "dot"]).exit_code == 0
    result = run_plot([spec, "--format", "png"])
    assert result.exit_code == 2 and "-o graph.png" in result.output


def test_plot_prints_mermaid_by_default_and_one_model_on_request():
    result = run_plot([SPECS / "vae.yaml", "--model", "decoder"])
    assert result.exit_code == 0 and result.output.startswith("flowchart TB")
    assert "decoder_hidden" in result.output and "encoder_hidden" not in result.output
    result = run_plot([SPECS / "vae.yaml", "--model", "nope"])
    assert result.exit_code == 1 and "models: vae, decoder" in result.output


def test_mermaid_too_big_for_renderers_gets_a_note(monkeypatch, tmp_path):
    from graphspec.cli import plot_commands
    monkeypatch.setattr(plot_commands, "MERMAID_MAX_EDGES", 3)
    result = CliRunner().invoke(
        plot, [str(SPECS / "inception.yaml"), "-o", str(tmp_path / "g.mmd")])
    assert result.exit_code == 0
    assert "characters and 9 edges" in result.stderr
    assert "draw one model with --model" in result.stderr
    result = run_plot([SPECS / "mlp.yaml", "-o", tmp_path / "small.mmd"])
    assert "note:" not in result.output


def test_a_missing_spec_is_one_line(tmp_path):
    result = run_plot([tmp_path / "nope.yaml", "-o", tmp_path / "g.svg"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "nope.yaml" in result.output and not (tmp_path / "g.svg").exists()


CORNERS = """
graphspec: 1
layers:
  add: {type: Add}
  lstm: {type: LSTM, units: 3, return_state: true}
models:
  inner:
    inputs:
      a: {shape: [4]}
      b: {shape: [4]}
    calls:
      - {layer: add, in: [a, a], out: s}
    outputs: [s, b]
  outer:
    inputs:
      x: {shape: [4]}
      unused: {shape: [2]}
      seq: {shape: [5, 2]}
    calls:
      - {layer: inner, in: [x, x], out: [y, z]}
      - {layer: lstm, in: seq, out: [o, h, c]}
    outputs: [y, z, x, h]
"""


@needs_dot
def test_outputs_that_are_inputs_unused_inputs_and_output_slots(tmp_path):
    graph = graphspec.load(write_spec(tmp_path, CORNERS), initialize=False)
    boxes, clusters, edges = graphviz_reading(graph_text(graph, "dot", model="outer"))
    by_title = {title(b): b for b in boxes.values()}
    assert sorted(by_title) == ["add", "lstm", "seq", "unused", "x"] and len(clusters) == 2
    # z is the sub-model's input b passed straight through: it comes from x itself.
    assert "output: z</B>" in by_title["x"]["label"] and "output: x</B>" in by_title["x"]["label"]
    assert "output: y</B>" in by_title["add"]["label"]
    assert "output: h (out #1)</B>" in by_title["lstm"]["label"]
    assert "peripheries" not in by_title["unused"]
    assert sorted(e["label"] for e in edges) == ["#0 x", "#1 x", "seq"]
