"""Docs that run: the code blocks of a Markdown page, run in page order as a reader would.

The convention the pages follow:
- a fenced block whose info string is `bash` or `python` is run; any other (`yaml`, `text`,
  `console`, `toml`, `json`, none) is not;
- a block whose fence is preceded, on the line just before it, by `<!-- not run: REASON -->`
  is not run; the reason must be given;
- a page's blocks run in one fresh folder holding a copy of the repo's `pipelines/`, so that
  `synthgen run pipelines/digits.yaml` works as on a checkout;
- `bash` blocks run with `bash -euo pipefail`, the `synthgen` command on PATH;
- `python` blocks share one namespace: they run in one Python process per page, started when
  the page starts (a fresh interpreter, as the reader's, so a block's Ray, signal handlers and
  environment never leak into the test process or into another page).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RUN = ("bash", "python")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run\b:?(?P<reason>.*?)-->\s*$")
BLOCK_TIMEOUT_S = 600

# The page's Python process: reads one JSON line per block ({"code", "name"}), runs it in the
# page's namespace with its output going to stderr (the log), and answers "ok" or "failed" on
# its own stdout. It keeps its stdin and stdout for that alone: a block and the processes it
# starts see /dev/null as stdin and the log as stdout.
PYTHON_RUNNER = """
import json, os, sys, traceback
requests, answers = os.fdopen(os.dup(0)), os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
os.dup2(2, 1)
sys.stdin, sys.stdout = open(os.devnull), os.fdopen(1, "w", buffering=1)
namespace = {"__name__": "__main__"}
for request in requests:
    block = json.loads(request)
    try:
        exec(compile(block["code"], block["name"], "exec"), namespace)
        answer = "ok"
    except BaseException:
        traceback.print_exc()
        answer = "failed"
    sys.stdout.flush(); sys.stderr.flush()
    answers.write(answer + "\\n"); answers.flush()
"""


class DocsError(Exception):
    """A page's block failed, or the page breaks the convention: the message says where."""


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # the line of the opening fence, from 1
    skip_reason: str | None  # None: run it (when its language is run)

    @property
    def runs(self) -> bool:
        return self.language in RUN and self.skip_reason is None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, in order; a `not run` mark without a reason is an error."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = next((j for j in range(i + 1, len(lines)) if _closes(lines[j], fence)), len(lines))
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
        language = opening["info"].split()[0].lower() if opening["info"].strip() else ""
        found.append(Block(language, "\n".join(body) + "\n", i + 1, _skip_reason(page, lines, i)))
        i = end + 1
    return found


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _skip_reason(page: Path, lines: list[str], fence_index: int) -> str | None:
    mark = NOT_RUN.match(lines[fence_index - 1]) if fence_index > 0 else None
    if mark is None:
        return None
    reason = mark["reason"].strip()
    if not reason:
        raise DocsError(f"{page.name}:{fence_index}: `<!-- not run -->` needs a reason: "
                        "write `<!-- not run: REASON -->`")
    return reason


def prepare_folder(folder: Path, root: Path) -> Path:
    """The page's working folder: a copy of the repo's pipelines/, as on a checkout."""
    shutil.copytree(root / "pipelines", folder / "pipelines")
    return folder


def run_page(page: Path, folder: Path, env: Mapping[str, str]) -> int:
    """Run the page's blocks in `folder`, in order; raise DocsError naming the first that
    fails, with its output. Returns how many blocks ran."""
    runnable = [block for block in blocks(page) if block.runs]
    python: PythonSession | None = None
    try:
        for block in runnable:
            if block.language == "bash":
                ok, output = _run_bash(block, folder, env)
            else:
                python = python or PythonSession(folder, env)
                ok, output = python.run(block, f"{page.name}:{block.line}")
            if not ok:
                raise DocsError(f"{page.name}:{block.line}: the {block.language} block failed\n"
                                f"--- block ---\n{block.code}--- its output ---\n{output}")
    finally:
        if python is not None:
            python.close()
    return len(runnable)


def _run_bash(block: Block, folder: Path, env: Mapping[str, str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=folder, env=dict(env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return False, f"{exc.output or ''}\n(still running after {BLOCK_TIMEOUT_S} s)"
    return done.returncode == 0, done.stdout + ("" if done.returncode == 0 else f"(exit {done.returncode})\n")


class PythonSession:
    """One Python process for a page's `python` blocks: they share its namespace."""

    def __init__(self, folder: Path, env: Mapping[str, str]) -> None:
        self.log = folder.parent / f"{folder.name}-python.log"  # outside the reader's folder
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", PYTHON_RUNNER], cwd=folder, env=dict(env),
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                            text=True)

    def run(self, block: Block, name: str) -> tuple[bool, str]:
        """Run one block; (whether it succeeded, what it printed)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        start = self.log.stat().st_size
        self.process.stdin.write(json.dumps({"code": block.code, "name": name}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        with self.log.open("rb") as log:
            log.seek(start)
            output = log.read().decode(errors="replace")
        if answer not in ("ok", "failed"):
            output += f"(the Python process ended: exit {self.process.wait()})\n"
        return answer == "ok", output

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
