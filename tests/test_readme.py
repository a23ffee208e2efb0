"""Every command and Python block in README.md runs as written.

The README is read top to bottom as a new user would: all its ```python blocks in one
Python session (they continue one another) and its ```bash commands in one shell, in
document order, in one empty folder. What is run and what is skipped is decided by the
rules below, for every command; a command no rule knows fails the test, so that a new
README example cannot be skipped silently.

- Skipped: installing and setting up the environment (``python3 -m venv``, activating it,
  ``pip install``, ``apt-get``), which the tests already run in; the test suite itself
  (``tox``); and ``napari-pixel-clusters`` without a subcommand, which opens a window.
- Run: ``napari-pixel-clusters segment|apply|sweep ...`` (the console script next to this
  Python) and ``python -c ...`` (this Python), with that folder first on ``PATH``.
- A block right after ``<!-- not-run: REASON -->`` is skipped (the reason is required).

The session is one subprocess (``python tests/test_readme.py PLAN``), so that a failure
is reported with the README line it comes from.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
CLI = "napari-pixel-clusters"
SUBCOMMANDS = ("segment", "apply", "sweep")

SKIP_RULES = [  # (pattern on the command, why it is not run)
    (r"python3? -m venv\b", "sets up a virtual environment; the tests run in one"),
    (r"(\.|source) \S*activate$", "activates a virtual environment; the tests run in one"),
    (r"(python3? -m )?pip install\b", "installs packages"),
    (r"apt-get\b", "installs system packages"),
    (r"(python3? -m )?tox\b", "runs the test suite itself"),
    (CLI + r"(?!\s+(" + "|".join(SUBCOMMANDS) + r")\b)", "opens the napari viewer"),
]
RUN_RULES = [
    CLI + r"\s+(" + "|".join(SUBCOMMANDS) + r")\b",
    r"python3? -c ",
]
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(\S.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")


def readme_blocks(text: str) -> list[dict]:
    """Every fenced block: language, first code line (1-based), code, not-run reason."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        reason = NOT_RUN.search(previous)
        blocks.append(
            {
                "language": opening.group(1),
                "line": i + 2,
                "code": "\n".join(lines[i + 1 : end]) + "\n",
                "not_run": reason.group(1) if reason else None,
            }
        )
        i = end + 1
    return blocks


def shell_commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, split at '&&'."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            commands += [part.strip() for part in line.split("&&")]
    return commands


def classify(command: str) -> str | None:
    """None to run ``command``, else why it is skipped; a command no rule knows raises."""
    for pattern, reason in SKIP_RULES:
        if re.match(pattern, command):
            return reason
    if any(re.match(pattern, command) for pattern in RUN_RULES):
        return None
    raise AssertionError(
        f"README command without a rule in tests/test_readme.py: "
        f"{command!r}; add a run or skip rule for it."
    )


def readme_plan(text: str) -> list[dict]:
    """The steps to run, in README order: python blocks and single shell commands."""
    steps = []
    for block in readme_blocks(text):
        if block["not_run"] or block["language"] not in ("python", "bash"):
            continue
        if block["language"] == "python":
            steps.append({"kind": "python", "line": block["line"], "code": block["code"]})
            continue
        for command in shell_commands(block["code"]):
            if classify(command) is None:
                steps.append({"kind": "bash", "line": block["line"], "code": command})
    return steps


def expected_folders(step: dict) -> list[str]:
    """The result folders a CLI ``segment``/``apply`` step must leave: OUT/<image stem>."""
    words = shlex.split(step["code"], comments=True)
    if step["kind"] != "bash" or words[0] != CLI or words[1] not in ("segment", "apply"):
        return []
    from napari_pixel_clusters.cli import build_parser

    args, _ = build_parser().parse_known_args(words[1:])
    return [str(Path(args.out) / Path(image).stem) for image in args.images]


def run_plan(plan_file: str) -> int:
    """Run the steps in one session (this process), in the current folder."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    namespace = {"__name__": "__readme__"}
    for step in json.loads(Path(plan_file).read_text()):
        started = time.perf_counter()
        where = f"README.md:{step['line']}"
        if step["kind"] == "python":
            # blank lines first, so that a traceback's line numbers are the README's
            code = "\n" * (step["line"] - 1) + step["code"]
            exec(compile(code, str(README), "exec"), namespace)
        else:
            done = subprocess.run(
                ["bash", "-c", step["code"]], env=env, text=True, capture_output=True
            )
            sys.stdout.write(done.stdout)
            if done.returncode != 0:
                print(
                    f"{where}: exit code {done.returncode}: {step['code']}\n{done.stderr}",
                    file=sys.stderr,
                )
                return 1
        print(f"{where} ({step['kind']}) ok in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


# ---------------------------------------------------------------------------- tests


def test_the_rules_leave_the_readme_examples_to_run():
    """The plan is not empty: the CLI's three subcommands and the Python blocks run."""
    plan = readme_plan(README.read_text())
    commands = [step["code"] for step in plan if step["kind"] == "bash"]
    for sub in SUBCOMMANDS:
        assert any(c.startswith(f"{CLI} {sub} ") for c in commands), sub
    assert sum(step["kind"] == "python" for step in plan) >= 3
    assert classify("napari-pixel-clusters path/to/image.tif") == "opens the napari viewer"
    assert classify("napari-pixel-clusters") == "opens the napari viewer"
    assert classify("python3 -m pip install tox") == "installs packages"


def test_every_readme_example_runs_as_written(tmp_path):
    plan = readme_plan(README.read_text())
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, __file__, str(plan_file)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    for step in plan:
        for folder in expected_folders(step):
            assert (work / folder / "params.json").is_file(), (step["code"], folder)
    assert "suggested k:" in done.stdout  # the sweep printed its table and choice


if __name__ == "__main__":
    sys.exit(run_plan(sys.argv[1]))
