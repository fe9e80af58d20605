"""The GitHub Action's script: validate the specs a pull request changes, and comment
the model diff of each against the base branch.

Run in the checked-out repository as ``python -m graphspec.review.action`` (action.yml
does). Everything comes from the environment, so nothing from a pull request is ever
pasted into a shell line:

- ``GRAPHSPEC_SPECS``: git pathspecs to look in, whitespace-separated (default: every
  ``*.yaml``/``*.yml``); a changed YAML file is a spec if it has a top-level
  ``graphspec:`` key, so CI workflows and other configs are skipped.
- ``GRAPHSPEC_BASE``: the base revision (default: the pull request's base commit from
  ``GITHUB_EVENT_PATH``, else ``origin/$GITHUB_BASE_REF``). Specs are compared with
  their version at the merge base, so commits on the base branch are not in the diff.
- ``GRAPHSPEC_PARAMS``: ``NAME=VALUE`` overrides for both sides, whitespace-separated.
- ``GRAPHSPEC_COMMENT``: ``false`` to skip the comment (default ``true``).
- ``GRAPHSPEC_PR``: the pull request number (default: from the event).
- ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY``: the comment is posted (or the previous one
  updated) with ``gh`` only when a token, a repository and a PR number are all present;
  a failure to post is a warning, never a failed check (fork PRs get read-only tokens).

Validation errors become ``::error`` annotations on the spec lines; the comment body
also goes to ``GITHUB_STEP_SUMMARY``. Exit 0 if every changed spec is valid, 1 if one
is not, 2 if the base revision cannot be found.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import yaml

from .. import api
from ..errors import GraphspecError, InputError, SpecErrors
from .diff import diff_specs
from .models import summary
from .render import code
from .source import load_source, run_git

MARKER = "<!-- graphspec-review -->"
MAX_COMMENT_CHARS = 60000        # GitHub refuses comments over 65,536 characters
_SPEC_KEY = re.compile(r"^graphspec\s*:", re.MULTILINE)


@dataclass
class Report:
    """What the action produces: the comment body, the annotation lines, the verdict."""
    body: str
    annotations: list = field(default_factory=list)
    invalid: int = 0
    changed: int = 0


# -- git --------------------------------------------------------------------------------
def _git(repo, *args, check: bool = True) -> str:
    """git's output as text; with ``check=False`` a failure is an empty string."""
    try:
        return run_git(list(args), repo).decode("utf-8", "replace")
    except InputError:
        if check:
            raise
        return ""


def merge_base(repo, base: str) -> str:
    """The commit the pull request started from (``base`` itself in a shallow clone)."""
    if base.startswith("-"):
        raise InputError(f"base revision '{base}' starts with '-': refused")
    if not _git(repo, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False):
        raise InputError(f"base revision '{base}' is not in this clone: check out with "
                         "fetch-depth: 0 (actions/checkout) or set the 'base' input")
    found = _git(repo, "merge-base", base, "HEAD", check=False).strip()
    return found or _git(repo, "rev-parse", f"{base}^{{commit}}").strip()


def changed_files(repo, base: str, pathspecs: list) -> list:
    """``[(status, old path, new path)]`` of YAML files changed from ``base`` to HEAD;
    status A, M, D or R (a rename keeps its history, so the diff follows it)."""
    out = _git(repo, "diff", "--name-status", "-z", "-M", base, "HEAD", "--",
               *(pathspecs or ["*.yaml", "*.yml"]))
    fields, changes, i = out.split("\0"), [], 0
    while i < len(fields) and fields[i]:
        status = fields[i][0]
        if status in "RC":
            old, new, i = fields[i + 1], fields[i + 2], i + 3
        else:
            old = new = fields[i + 1]
            i += 2
        if new.endswith((".yaml", ".yml")) or old.endswith((".yaml", ".yml")):
            changes.append(("A" if status == "C" else status, old, new))
    return changes


def _inside(repo, path) -> bool:
    """A plain file of the checkout: a pull request can add a symlink named like a spec
    that points at a file of the runner, whose text would reach the public comment."""
    full = os.path.join(repo, path)
    top = os.path.realpath(repo)
    return not os.path.islink(full) and os.path.realpath(full).startswith(top + os.sep)


def _is_spec(repo, rev_or_none, path) -> bool:
    if rev_or_none is None and not _inside(repo, path):
        return True     # reported (and not read) by _section
    try:
        text = _git(repo, "show", f"{rev_or_none}:{path}") if rev_or_none else \
            open(os.path.join(repo, path), encoding="utf-8", errors="replace").read(65536)
    except (OSError, InputError):
        return False
    return bool(_SPEC_KEY.search(text))


# -- the report --------------------------------------------------------------------------
def escape_data(text: str) -> str:
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, file: str, message: str, line: int = 0, col: int = 0,
               title: str = "graphspec") -> str:
    where = f"file={escape_property(file)}"
    if line:
        where += f",line={line},col={max(col, 1)}"
    return f"::{level} {where},title={escape_property(title)}::{escape_data(message)}"


def _validate(repo, path: str, params: dict, report: Report) -> bool:
    errors = api.validate(os.path.join(repo, path), params)
    for error in errors:
        message = f"{error.path}: {error.message}" if error.path else error.message
        report.annotations.append(annotation("error", path, message, error.line, error.col,
                                             "graphspec validate"))
    report.invalid += bool(errors)
    return not errors


def _added_section(repo, path: str, params: dict) -> str:
    graph = load_source(os.path.join(repo, path), params)
    lines = [f"#### {code(path)}: new spec", "", "| model | inputs | outputs | params |",
             "|---|---|---|---|"]
    for name, model in graph.models.items():
        entry = summary(model)
        ins = ", ".join(f"{t['name']} {t['shape']}" for t in entry["inputs"])
        outs = ", ".join(f"{t['name']} {t['shape']}" for t in entry["outputs"])
        lines.append(f"| {code(name)} | {code(ins)} | {code(outs)} | "
                     f"{entry['params']['total']:,} |")
    return "\n".join(lines) + "\n"


def _diff_section(repo, base: str, old: str, new: str, params: dict, report: Report) -> str:
    try:
        diff = diff_specs(f"{base}:{os.path.join(repo, old)}", os.path.join(repo, new),
                          params_old=params, params_new=params)
    except SpecErrors as exc:
        return (f"#### {code(new)}: the base version does not compile, so there is nothing "
                f"to compare with ({len(exc.errors)} error(s) at {code(base[:12])})\n")
    if diff.has_model_changes:
        report.changed += 1
        report.annotations.append(annotation("notice", new, "model changes: see the "
                                             "graphspec review comment", title="graphspec diff"))
    diff.old, diff.new = f"{old}@{base[:12]}", new     # names relative to the repository
    return diff.to_markdown()


def _section(repo, base: str, status: str, old: str, new: str, params: dict, report) -> str:
    if status == "D":
        report.changed += 1
        return f"#### {code(old)}: spec removed\n"
    if not _inside(repo, new):
        report.invalid += 1
        report.annotations.append(annotation("error", new, "a symbolic link or a path "
                                             "outside the repository: not read"))
        return f"#### {code(new)}: not reviewed (a symbolic link; specs are plain files)\n"
    if not _validate(repo, new, params, report):
        return f"#### {code(new)}: invalid (see the annotations on the changed lines)\n"
    if status == "A":
        report.changed += 1
        return _added_section(repo, new, params)
    return _diff_section(repo, base, old, new, params, report)


def build_report(repo, base: str, pathspecs: list | None = None,
                 params: dict | None = None) -> Report:
    """Validate and diff every spec changed between ``base`` and HEAD in ``repo``
    (paths in the report are relative to the top of ``repo``, as git prints them)."""
    params = params or {}
    start = merge_base(repo, base)
    report, sections = Report(body=""), []
    for status, old, new in changed_files(repo, start, pathspecs or []):
        spec = _is_spec(repo, start, old) if status == "D" else _is_spec(repo, None, new)
        if spec:
            sections.append(_section(repo, start, status, old, new, params, report))
    report.body = _body(sections, start, report)
    return report


def _body(sections: list, base: str, report: Report) -> str:
    head = f"{MARKER}\n### graphspec review\n\n"
    if not sections:
        return head + f"No graphspec spec changed since `{base[:12]}`.\n"
    verdict = f"{len(sections)} spec(s) changed since `{base[:12]}`"
    verdict += f"; **{report.invalid} invalid**" if report.invalid else ""
    body = head + verdict + ".\n\n" + "\n".join(sections)
    if len(body) > MAX_COMMENT_CHARS:
        cut = body.rfind("\n", 0, MAX_COMMENT_CHARS - 200)
        body = body[:cut] + "\n\n… (truncated: run `graphspec diff` locally for the rest)\n"
    return body


# -- posting -----------------------------------------------------------------------------
def parse_params(text: str) -> dict:
    params = {}
    for item in (text or "").split():
        name, sep, raw = item.partition("=")
        value = yaml.safe_load(raw) if sep else None
        if not sep or not name or not isinstance(value, (int, float, str, bool)):
            raise InputError(f"GRAPHSPEC_PARAMS: '{item}' should look like NAME=VALUE "
                             "(a number, string or boolean)")
        params[name] = value
    return params


def pull_request_number(env) -> int | None:
    raw = env.get("GRAPHSPEC_PR", "").strip()
    if not raw and env.get("GITHUB_EVENT_PATH"):
        try:
            with open(env["GITHUB_EVENT_PATH"], encoding="utf-8") as handle:
                raw = str((json.load(handle).get("pull_request") or {}).get("number") or "")
        except (OSError, ValueError, AttributeError):
            raw = ""
    return int(raw) if raw.isdigit() else None


def _event_base(env) -> str | None:
    if env.get("GRAPHSPEC_BASE", "").strip():
        return env["GRAPHSPEC_BASE"].strip()
    try:
        with open(env.get("GITHUB_EVENT_PATH", ""), encoding="utf-8") as handle:
            sha = ((json.load(handle).get("pull_request") or {}).get("base") or {}).get("sha")
        if sha:
            return str(sha)
    except (OSError, ValueError, AttributeError):
        pass
    return f"origin/{env['GITHUB_BASE_REF']}" if env.get("GITHUB_BASE_REF") else None


def post_comment_commands(repo_name: str, number: int, body_file: str,
                          existing: str | None) -> list:
    """The ``gh`` command that creates the comment, or updates the earlier one."""
    if existing:
        return ["gh", "api", "-X", "PATCH", f"repos/{repo_name}/issues/comments/{existing}",
                "-F", f"body=@{body_file}"]
    return ["gh", "api", "-X", "POST", f"repos/{repo_name}/issues/{number}/comments",
            "-F", f"body=@{body_file}"]


def post_comment(body: str, repo_name: str, number: int, token: str) -> str:
    """Create or update the review comment; returns what happened (for the log)."""
    env = dict(os.environ, GH_TOKEN=token)
    listing = ["gh", "api", "--paginate", f"repos/{repo_name}/issues/{number}/comments",
               "--jq", f'.[] | select(.body | startswith("{MARKER}")) | .id']
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(body)
    try:
        found = subprocess.run(listing, capture_output=True, text=True, env=env, timeout=120,
                               check=True).stdout.split()
        command = post_comment_commands(repo_name, number, handle.name,
                                        found[0] if found else None)
        subprocess.run(command, capture_output=True, text=True, env=env, timeout=120,
                       check=True)
        return "updated the review comment" if found else "posted the review comment"
    finally:
        os.unlink(handle.name)


def _publish(report: Report, env) -> None:
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(report.body + "\n")
    number, token, repo_name = pull_request_number(env), env.get("GITHUB_TOKEN"), \
        env.get("GITHUB_REPOSITORY")
    if env.get("GRAPHSPEC_COMMENT", "true").lower() == "false":
        return
    if not (number and token and repo_name):
        print("graphspec review: no pull request number or token; comment not posted")
        return
    try:
        print(f"graphspec review: {post_comment(report.body, repo_name, number, token)}")
    except (OSError, subprocess.SubprocessError) as exc:
        detail = str(getattr(exc, "stderr", "") or exc).strip()[:300]
        print(f"::warning title=graphspec review::could not post the review comment "
              f"(a fork's read-only token?): {escape_data(detail)}")


def main(env=None, repo: str = ".") -> int:
    env = os.environ if env is None else env
    try:
        base = _event_base(env)
        if not base:
            raise InputError("no base revision: set the action's 'base' input (or run it "
                             "on a pull_request event)")
        report = build_report(repo, base, env.get("GRAPHSPEC_SPECS", "").split(),
                              parse_params(env.get("GRAPHSPEC_PARAMS", "")))
    except GraphspecError as exc:
        print(f"::error title=graphspec review::{escape_data(str(exc))}")
        return 2
    for line in report.annotations:
        print(line)
    print(report.body)
    _publish(report, env)
    return 1 if report.invalid else 0


if __name__ == "__main__":
    sys.exit(main())
