"""Running Graphviz's ``dot`` program: DOT text in, image bytes out.

``dot`` is an external program (Debian/Ubuntu package ``graphviz``), run without a
shell, with the DOT text on stdin and the image read from stdout, under a time limit.
Its failures become one line: the first meaningful line of its stderr.
"""
from __future__ import annotations

import shutil
import subprocess

from ..errors import InputError

IMAGE_FORMATS = ("svg", "png", "pdf")
DOT_TIMEOUT = 120.0     # seconds; a spec of a few thousand nodes lays out in well under this
PNG_DPI = 110           # sharper than Graphviz's 96 without making huge graphs enormous


def missing_dot_message(output) -> str:
    return (f"graphspec plot -o {output} needs Graphviz's dot program (Debian/Ubuntu: "
            "apt-get install graphviz; macOS: brew install graphviz), or write .dot / .mmd "
            "text with -o graph.dot")


def find_dot() -> str | None:
    return shutil.which("dot")


def render(dot_text: str, fmt: str, output="graph.svg",
           timeout: float = DOT_TIMEOUT) -> bytes:
    """The image of ``dot_text`` in ``fmt`` (svg, png or pdf) as bytes."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"render() draws {IMAGE_FORMATS}, not {fmt!r}")
    program = find_dot()
    if program is None:
        raise InputError(missing_dot_message(output))
    command = [program, f"-T{fmt}"] + ([f"-Gdpi={PNG_DPI}"] if fmt == "png" else [])
    try:
        done = subprocess.run(command, input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False, shell=False)
    except subprocess.TimeoutExpired:
        raise InputError(f"Graphviz's dot took longer than {timeout:g} s to lay out the "
                         f"picture for {output}; draw one model with --model NAME, or write "
                         "-o graph.dot and render it yourself") from None
    except OSError as exc:
        raise InputError(f"cannot run Graphviz's dot ({program}): "
                         f"{exc.strerror or exc}") from None
    if done.returncode != 0 or not done.stdout:
        raise InputError(f"Graphviz's dot could not draw {output}: "
                         f"{first_line(done.stderr) or f'exit status {done.returncode}'}")
    return done.stdout


def first_line(stderr: bytes) -> str:
    """The first line of ``stderr`` that says something, trimmed to one short line."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= 200 else line[:199] + "\u2026"
    return ""
