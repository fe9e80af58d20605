"""The memory refusal of a spec with several models names the layers that take the room,
even when they belong to another model (every layer of a spec is allocated)."""
from click.testing import CliRunner

from graphspec.cli import main


def test_vqa_refusal_names_the_answer_layer_of_the_other_model():
    result = CliRunner().invoke(main, ["build", "specs/vqa.yaml", "--max-memory", "200M"])
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("error: model 'vision_model' needs about 629.7 MiB")
    assert "in layers of the spec's other models (all are allocated)" in line
    assert "largest layers: answer 611.3 MiB" in line
