"""The small things a new user met, each through the real command: `plan | head`, a stale lock in
`status`, `verify` on a job not finished, read-only destinations of export, preview and train,
train's warm-up on a short run, and eval's table. None of these runs Ray."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from synthgen.storage import lock
from synthgen.storage.layout import LOCK_FILE, SUCCESS_FILE
from tests.conftest import NEEDS_TORCH, ROOT
from tests.conftest import synthgen as cli

DIGITS = str(ROOT / "pipelines/digits.yaml")


@pytest.fixture
def claimed(tmp_path: Path) -> Path:
    """An output holding the digits job's job.json and nothing committed: a job just started."""
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.spec.load import load_spec

    out = tmp_path / "digits"
    claim_output(prepare(load_spec(DIGITS, output=str(out))))
    return out


def write_lock(out: Path, pid: int, host: str | None = None, heartbeat_ago: float = 0.0) -> None:
    now = time.time()
    (out / LOCK_FILE).write_text(json.dumps({
        "token": "t", "host": host or socket.gethostname(), "pid": pid, "pid_started": None,
        "boot_id": lock._boot_id(), "pid_ns": lock._pid_namespace(),  # as this host's driver writes
        "started_at": now - 100, "heartbeat_at": now - heartbeat_ago}))


def gone_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def test_plan_into_a_closed_pipe_ends_quietly_with_141() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "synthgen.cli", "plan", DIGITS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # the reader went away, as `head` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and stderr == ""


def test_status_calls_a_dead_drivers_lock_stale_and_says_what_takes_it_over(claimed: Path) -> None:
    write_lock(claimed, gone_pid())
    shown = cli("status", str(claimed))
    assert shown.returncode == 0, shown.stderr
    assert "holds the job lock" not in shown.stdout
    assert "no longer running, so its job lock is stale" in shown.stdout
    assert f"`synthgen resume {claimed}` takes it over" in shown.stdout
    assert json.loads(cli("status", str(claimed), "--json").stdout)["driver_state"] == "dead"
    write_lock(claimed, 1, host="elsewhere", heartbeat_ago=600)
    assert f"`synthgen resume {claimed} --takeover`" in cli("status", str(claimed)).stdout
    write_lock(claimed, os.getpid())
    assert "(holds the job lock)" in cli("status", str(claimed)).stdout


def test_verify_reports_uncommitted_shards_of_a_running_job_as_pending(claimed: Path) -> None:
    write_lock(claimed, os.getpid())
    running = cli("verify", str(claimed))
    assert running.returncode == 0, running.stderr
    assert "4 of 4 shards pending (not committed yet): the job is running" in running.stdout
    (claimed / LOCK_FILE).unlink()
    stopped = cli("verify", str(claimed))
    assert stopped.returncode == 0 and f"`synthgen resume {claimed}` runs them" in stopped.stdout
    (claimed / SUCCESS_FILE).write_text("{}")  # claims complete, yet no shard is committed
    broken = cli("verify", str(claimed))
    assert broken.returncode == 1 and "shard 0: not committed, though _SUCCESS" in broken.stderr


@pytest.mark.parametrize("command", ["export", "preview", pytest.param("train", marks=NEEDS_TORCH)])
def test_a_read_only_output_is_one_line_and_exit_2(command: str, claimed: Path, read_only_dir: Path) -> None:
    dest = read_only_dir / "x"
    args = {"export": ["export", str(claimed), "--format", "imagefolder", "--output", str(dest), "--partial"],
            "preview": ["preview", str(claimed), "--output", str(dest / "grid.png")],
            "train": ["train", "--output", str(dest), "--steps", "2"]}[command]
    run = cli(*args)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: --output") and len(run.stderr.strip().splitlines()) == 1
    assert "Read-only file system" in run.stderr or "Permission denied" in run.stderr
    assert list(read_only_dir.iterdir()) == []


@NEEDS_TORCH
def test_a_short_run_caps_the_default_warmup_and_refuses_a_longer_one(tmp_path: Path) -> None:
    from synthgen.errors import UserError
    from synthgen.train.config import TrainConfig, resolve_warmup

    assert resolve_warmup(TrainConfig(steps=50), 50) == 5
    assert resolve_warmup(TrainConfig(), 12000) == 200
    assert resolve_warmup(TrainConfig(warmup_steps=50), 50) == 50
    with pytest.raises(UserError, match="--warmup-steps"):
        resolve_warmup(TrainConfig(warmup_steps=200), 50)
    run = cli("train", "--output", str(tmp_path / "m"), "--steps", "5", "--warmup-steps", "10")
    assert run.returncode == 2 and "is more than the run's 5 steps" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


@NEEDS_TORCH
def test_eval_prints_the_confusion_matrix_and_whole_headers(tmp_path: Path) -> None:
    from PIL import Image

    from tests.quality.test_eval import digit_png_pixels

    images, labels = digit_png_pixels(300)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / str(label) / f"{i:04d}.png")
    run = cli("eval", str(tmp_path), "--real", "builtin:digits")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    header = next(line for line in lines if line.startswith("class "))
    assert header.split()[:3] == ["class", "logistic_regression", "svm_rbf"]
    for title in ("LogisticRegression(max_iter=5000)", "SVC() (RBF kernel)"):
        start = lines.index(f"confusion matrix of {title} (rows: real class, columns: predicted)")
        assert lines[start + 1].split() == ["real", *map(str, range(10))]
        rows = [line.split() for line in lines[start + 2:start + 12]]
        assert [r[0] for r in rows] == list(map(str, range(10)))
        assert sum(int(v) for r in rows for v in r[1:]) == 597  # every real test image, once


def test_past_twenty_classes_eval_lists_the_top_confusions() -> None:
    from synthgen.quality.evaluation import MAX_MATRIX_CLASSES, confusion_lines

    names = [f"class-{i}" for i in range(25)]
    matrix = [[10 if i == j else 0 for j in range(25)] for i in range(25)]
    matrix[3][7], matrix[5][1] = 4, 9
    lines = confusion_lines(names, {"classifier": "SVC()", "confusion_matrix": matrix})
    assert lines[0] == "most frequent confusions of SVC() (the full matrix: --json):"
    assert lines[1:] == ["  class-5 -> class-1: 9", "  class-3 -> class-7: 4"]
    assert len(names) > MAX_MATRIX_CLASSES


@NEEDS_TORCH
def test_resume_repair_of_a_copied_output_names_the_copy(prompt_output: Any, tmp_path: Path) -> None:
    """job.json keeps the output.uri it was run with; every line and the card name the copy."""
    copy = tmp_path / "copy"
    shutil.copytree(prompt_output.path, copy)
    (copy / SUCCESS_FILE).unlink()  # as `--repair` leaves it when it un-commits a shard
    done = cli("resume", str(copy), "--repair")
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert f"complete: {prompt_output.total} samples in {copy}" in said
    assert str(prompt_output.path) not in said
    card = (copy / "README.md").read_text()
    assert str(copy) in card and str(prompt_output.path) not in card


# The CLI's console logging (cli/app.py) beside a live bar, on a terminal: a pseudo-terminal.
BAR_AND_LOG = """
import logging, sys, time
from synthgen.engine.progress import Progress
logging.basicConfig(level=logging.INFO, format="synthgen: %(message)s", stream=sys.stderr)
with Progress(total=10, done=0, shards_total=2, shards_done=0) as progress:
    progress.in_flight(3)
    time.sleep(0.5)  # the bar is on screen
    logging.getLogger("synthgen").warning("a line of its own")
    progress.in_flight(5)
"""


def test_on_a_terminal_a_log_line_prints_above_the_bar_not_after_it() -> None:
    main, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    with subprocess.Popen([sys.executable, "-c", BAR_AND_LOG], stdin=child, stdout=child, stderr=child,
                          cwd=ROOT, env=env) as proc:
        os.close(child)
        screen = b""
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(main, 4096):
                screen += chunk
        assert proc.wait(timeout=60) == 0, screen
    os.close(main)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode())  # the control codes
    assert "images" in text  # the bar was drawn
    before, line, _ = text.partition("synthgen: a line of its own")
    assert line and before.endswith(("\n", "\r")), repr(before[-80:])
