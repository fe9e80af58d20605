"""The action's script run locally against a scratch repository with two commits.

The workflow itself cannot run here; everything it does besides ``gh`` is this script,
and posting is checked with a stand-in ``gh`` on PATH that records its arguments.
"""
import json
import os
import stat

from review_util import scratch_repo, shipped

from graphspec.review import action

MLP = open(shipped("mlp.yaml")).read()
RESIDUAL = open(shipped("residual.yaml")).read()
BROKEN = MLP.replace("layer: dense_2,", "layer: dense_9,")


def two_commits(tmp_path):
    return scratch_repo(
        tmp_path,
        {"specs/mlp.yaml": MLP, "specs/gone.yaml": RESIDUAL, "specs/moved.yaml": RESIDUAL
         .replace("image_size: 256", "image_size: 64"),
         ".github/workflows/ci.yml": "on: push\n", "config.yaml": "graphspec_like: 1\n"},
        {"specs/mlp.yaml": MLP.replace("units: 10,", "units: 12,"), "specs/gone.yaml": None,
         "specs/moved.yaml": None, "specs/renamed.yaml": RESIDUAL.replace(
             "image_size: 256", "image_size: 64"),
         "specs/broken.yaml": BROKEN, "specs/new.yaml": open(shipped("vae.yaml")).read(),
         ".github/workflows/ci.yml": "on: [push, pull_request]\n",
         "config.yaml": "graphspec_like: 2\n"})


def test_report_over_a_pull_request(tmp_path):
    repo = two_commits(tmp_path)
    base = action.merge_base(repo, "HEAD~1")
    report = action.build_report(repo, "HEAD~1")
    body = report.body
    assert body.startswith(action.MARKER + "\n### graphspec review")
    assert f"5 spec(s) changed since `{base[:12]}`; **1 invalid**" in body
    assert f"#### `specs/mlp.yaml@{base[:12]}` → `specs/mlp.yaml`: model changes" in body
    assert "| **layers** | config | `predictions.units` | 10 | 12 |" in body
    assert "#### `specs/gone.yaml`: spec removed" in body
    assert "#### `specs/new.yaml`: new spec" in body and "| `vae` |" in body
    assert "#### `specs/broken.yaml`: invalid" in body
    # a renamed file with the same model is followed, and is no model change
    assert f"`specs/moved.yaml@{base[:12]}` → `specs/renamed.yaml`: no model change" in body
    assert "ci.yml" not in body and "config.yaml" not in body     # not specs
    errors = [a for a in report.annotations if a.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith(
        "::error file=specs/broken.yaml,line=") and "dense_9" in errors[0]
    assert report.annotations.count(
        "::notice file=specs/mlp.yaml,title=graphspec diff::model changes: see the "
        "graphspec review comment") == 1
    assert report.invalid == 1 and report.changed == 3


def test_nothing_changed(tmp_path):
    repo = scratch_repo(tmp_path, {"specs/mlp.yaml": MLP}, {"README.md": "docs\n"})
    report = action.build_report(repo, "HEAD~1")
    assert "No graphspec spec changed" in report.body and not report.annotations


def test_annotations_escape_what_specs_and_paths_contain():
    line = action.annotation("error", "specs/a,b:c.yaml", "50% bad\nsecond line", 3, 7)
    assert line == ("::error file=specs/a%2Cb%3Ac.yaml,line=3,col=7,title=graphspec::"
                    "50%25 bad%0Asecond line")


def test_main_writes_the_summary_and_does_not_post_without_a_token(tmp_path, capsys):
    repo = two_commits(tmp_path)
    summary = tmp_path / "summary.md"
    code = action.main({"GRAPHSPEC_BASE": "HEAD~1", "GITHUB_STEP_SUMMARY": str(summary)},
                       repo=str(repo))
    out = capsys.readouterr().out
    assert code == 1                                  # one changed spec is invalid
    assert "comment not posted" in out and "::error file=specs/broken.yaml" in out
    assert summary.read_text().startswith(action.MARKER)


def test_main_without_a_base_or_with_a_hostile_one(tmp_path, capsys):
    repo = two_commits(tmp_path)
    assert action.main({}, repo=str(repo)) == 2
    assert action.main({"GRAPHSPEC_BASE": "--upload-pack=x"}, repo=str(repo)) == 2
    assert action.main({"GRAPHSPEC_BASE": "no-such-branch"}, repo=str(repo)) == 2
    out = capsys.readouterr().out
    assert "no base revision" in out and "starts with '-'" in out and "fetch-depth: 0" in out


def _fake_gh(tmp_path, existing: str):
    """A ``gh`` that logs its arguments and the body it was given, and lists comments."""
    log = tmp_path / "gh.log"
    script = tmp_path / "bin" / "gh"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        'for a in "$@"; do case "$a" in body=@*) cat "${a#body=@}" >> '
        f'"{log}.body";; esac; done\n'
        f'case "$*" in *--paginate*) printf "{existing}";; esac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log, script.parent


def test_posting_updates_the_earlier_comment(tmp_path, monkeypatch, capsys):
    repo = two_commits(tmp_path)
    log, bin_dir = _fake_gh(tmp_path, existing="987\\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42, "base": {"sha": "HEAD~1"}}}))
    code = action.main({"GITHUB_EVENT_PATH": str(event), "GITHUB_TOKEN": "t0ken",
                        "GITHUB_REPOSITORY": "octo/specs"}, repo=str(repo))
    assert code == 1
    calls = log.read_text().splitlines()
    assert calls[0].startswith("api --paginate repos/octo/specs/issues/42/comments --jq")
    assert calls[1].startswith("api -X PATCH repos/octo/specs/issues/comments/987 -F body=@")
    assert (tmp_path / "gh.log.body").read_text().startswith(action.MARKER)
    assert "updated the review comment" in capsys.readouterr().out


def test_posting_creates_a_comment_and_survives_a_failing_gh(tmp_path, monkeypatch, capsys):
    repo = two_commits(tmp_path)
    log, bin_dir = _fake_gh(tmp_path, existing="")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env = {"GRAPHSPEC_BASE": "HEAD~1", "GRAPHSPEC_PR": "7", "GITHUB_TOKEN": "t",
           "GITHUB_REPOSITORY": "octo/specs"}
    action.main(env, repo=str(repo))
    assert "api -X POST repos/octo/specs/issues/7/comments -F body=@" in log.read_text()
    (bin_dir / "gh").write_text("#!/bin/sh\necho 'HTTP 403: Resource not accessible' >&2\n"
                                "exit 1\n")
    assert action.main(env, repo=str(repo)) == 1      # the verdict, not the posting
    assert "::warning title=graphspec review::could not post the review comment" in \
        capsys.readouterr().out


def test_action_yml_passes_inputs_through_the_environment_only():
    import yaml
    from specs_util import REPO
    spec = yaml.safe_load((REPO / "action.yml").read_text())
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step     # no expression in a shell line
    script = steps[-1]
    assert script["run"] == "python -m graphspec.review.action"
    source = open(action.__file__).read()
    for name, value in script["env"].items():
        assert f'"{name}"' in source, f"action.py does not read {name}"
        assert value.startswith("${{ inputs.") and value[len("${{ inputs."):-3] in spec["inputs"]
    workflow = yaml.safe_load((REPO / ".github/workflows/example-graphspec-review.yml")
                              .read_text())
    job = workflow["jobs"]["review"]
    assert job["steps"][0]["with"]["fetch-depth"] == 0
    assert job["steps"][1]["uses"] == "./"
    assert workflow["permissions"]["pull-requests"] == "write"


def test_hostile_file_names_stay_inside_code_spans(tmp_path):
    name = "specs/a`b @org/team|x.yaml"
    repo = scratch_repo(tmp_path, {"README.md": "x"}, {name: MLP})
    body = action.build_report(repo, "HEAD~1").body
    assert "#### `` specs/a`b @org/team\\|x.yaml ``: new spec" in body
    assert body.count("@org") == 1


def test_the_module_runs_as_the_action_runs_it(tmp_path):
    import subprocess
    import sys
    repo = two_commits(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GRAPHSPEC_"))}
    env.update(GRAPHSPEC_BASE="HEAD~1", GRAPHSPEC_SPECS="specs",
               PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-m", "graphspec.review.action"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "::error file=specs/broken.yaml,line=" in done.stdout
    assert "| **layers** | config | `predictions.units` | 10 | 12 |" in done.stdout
    assert done.stderr == ""


def test_a_long_comment_is_cut_at_a_line_with_a_note():
    sections = [f"#### `s{i}.yaml`\n" + "| x | y |\n" * 400 for i in range(40)]
    body = action._body(sections, "a" * 40, action.Report(body=""))
    assert len(body) <= action.MAX_COMMENT_CHARS
    assert body.endswith("(truncated: run `graphspec diff` locally for the rest)\n")
    assert body.splitlines()[-3] == "| x | y |"


def test_a_symlink_named_like_a_spec_is_not_read(tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("graphspec: 1\ntoken: hunter2\n")
    repo = scratch_repo(tmp_path, {"README.md": "x"})
    (repo / "specs").mkdir()
    (repo / "specs" / "leak.yaml").symlink_to(secret)
    from review_util import git
    git(repo, "add", "specs/leak.yaml")
    git(repo, "commit", "-q", "-m", "link")
    report = action.build_report(repo, "HEAD~1")
    assert "hunter2" not in report.body + "".join(report.annotations)
    assert "not reviewed (a symbolic link" in report.body and report.invalid == 1


def test_a_spec_fixed_by_the_pull_request_says_its_base_did_not_compile(tmp_path):
    repo = scratch_repo(tmp_path, {"specs/m.yaml": BROKEN}, {"specs/m.yaml": MLP})
    report = action.build_report(repo, "HEAD~1")
    assert "the base version does not compile, so there is nothing to compare with " \
           "(1 error(s) at" in report.body
    assert report.invalid == 0 and not report.annotations
