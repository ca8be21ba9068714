"""`synthgen run` on the digits spec as a user runs it: the embedded local Ray (no address), the
real console entry point in a subprocess. Its stderr carries no third-party notice unless the
library's own setting asks for one, and Ctrl-C after the first commit keeps what is committed,
says so with the exact resume command, and exits 130; that command finishes the job."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

DIGITS = str(ROOT / "pipelines/digits.yaml")
NOTICES = ("Token authentication", "accelerate", "was not found in config", "Instantiating",
           "were initialized from the model checkpoint")
# RAY_AUTH_MODE too: this suite's `ray.init` sets it in the test process (Ray then stays silent)
LIBRARY_SETTINGS = ("RAY_LOGGER_LEVEL", "DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY", "RAY_ADDRESS",
                    "RAY_AUTH_MODE")


def user_env(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: none of the libraries' own settings, no cluster address."""
    env = {k: v for k, v in os.environ.items() if k not in LIBRARY_SETTINGS}
    return {**env, **extra}


def synthgen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "synthgen.cli", *args]


def run_digits(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(synthgen_cmd("run", DIGITS, "--output", str(out), "--set", "classes.count=2"),
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


@pytest.mark.slow
def test_digits_run_prints_no_third_party_notice_but_their_settings_show_them(tmp_path: Path) -> None:
    quiet = run_digits(tmp_path / "quiet", user_env())
    assert quiet.returncode == 0, quiet.stderr
    assert not [n for n in NOTICES if n in quiet.stderr], quiet.stderr
    assert "complete: 20 samples" in quiet.stderr
    asked = run_digits(tmp_path / "asked", user_env(RAY_LOGGER_LEVEL="warning", DIFFUSERS_VERBOSITY="info"))
    assert asked.returncode == 0, asked.stderr
    assert "Token authentication is enabled" in asked.stderr
    assert "Instantiating UNet2DModel" in asked.stderr  # a diffusers load notice, at info


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two embedded Ray starts, slow on a loaded 2-core machine
def test_ctrl_c_after_the_first_commit_keeps_it_and_prints_the_resume_command(tmp_path: Path) -> None:
    """100 images in 50 shards of 2, 2 steps each: many quick commits, so the job is mid-way."""
    out = tmp_path / "digits"
    args = ("run", DIGITS, "--output", str(out), "--set", "classes.count=10", "--set", "output.shard_size=2",
            "--set", "sampler.steps=2")
    proc = subprocess.Popen(synthgen_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=user_env(), cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list((out / "_commits").glob("shard-*.json")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no shard was committed in 300 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    found = re.search(r"interrupted: (\d+)/50 shards \((\d+)/100 images\) are committed at (\S+) and kept; "
                      r"resume with: (.+)$", stderr, re.MULTILINE)
    assert found, stderr
    committed = len(list((out / "_commits").glob("shard-*.json")))
    # an actor's shard in flight may still commit while the driver stops: never fewer
    assert 1 <= int(found[1]) <= committed < 50 and int(found[2]) == 2 * int(found[1])
    assert found[4] == shlex.join(["synthgen", "resume", str(out)])
    resumed = subprocess.run(synthgen_cmd(*shlex.split(found[4])[1:]), capture_output=True, text=True,
                             env=user_env(), timeout=600, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{committed} committed, {50 - committed} to run" in resumed.stderr
    assert (out / "_SUCCESS").exists()


EMBEDDED_RAY = """
import ray
from synthgen.engine.pool import connect_ray
assert connect_ray(None)
node = ray._private.worker._global_node
processes = [info.process for infos in node.all_processes.values() for info in infos]
print("monitor", [info.process.poll() is None for info in node.all_processes["monitor"]])
print("runs", ray.get(ray.remote(lambda: 1 + 1).remote()))
ray.shutdown()
print("left", [p.pid for p in processes if p.poll() is None])
"""


def test_the_embedded_ray_runs_without_the_autoscaler_and_leaves_no_process() -> None:
    """One node that never scales: its autoscaler monitor, which held every shutdown a second, is
    stopped at start; the cluster still runs work, and its shutdown leaves none of its processes."""
    done = subprocess.run([sys.executable, "-c", EMBEDDED_RAY], capture_output=True, text=True,
                          env=user_env(), timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["monitor [False]", "runs 2", "left []"], done.stdout
