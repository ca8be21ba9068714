"""`synthgen submit / jobs / cancel` against a real Ray head started here with `ray start --head`.

The head has token authentication on (Ray's default) and the CLI runs without RAY_AUTH_MODE,
as a new user's shell would: submit must find the local token by itself. The CLI runs without
the fault harness too: the head has it (tests/raynodes.py), so a fault plan reaches the job's
actors with nothing forwarded by `submit`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, tiny_spec, write_spec
from tests.helpers import raynodes
from tests.helpers.faults import fault_plan, without_harness

CLEAN_ENV = ("RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")


@pytest.fixture(scope="module")
def head() -> Iterator[raynodes.RayNode]:
    node = raynodes.start_head(num_cpus=2)
    yield node
    node.stop()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, with no Ray settings and no fault harness inherited from
    this process."""
    base = without_harness({k: v for k, v in os.environ.items() if k not in CLEAN_ENV})
    return subprocess.run([sys.executable, "-m", "synthgen.cli", *args], capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=timeout, cwd=ROOT)


def ray_job_of(result: subprocess.CompletedProcess[str]) -> str:
    first = result.stdout.splitlines()[0]
    assert first.startswith("submitted Ray job synthgen-"), result.stdout
    return first.split()[3]


def status_of(out: Path) -> dict:
    result = cli("status", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sample_ids(out: Path) -> list[int]:
    return sorted(pq.read_table(out / "index.parquet", columns=["sample_id"])["sample_id"].to_pylist())


def markers(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in (out / "_commits").glob("shard-*.json")}


def test_submit_wait_runs_the_digits_pipeline(head: raynodes.RayNode, tmp_path: Path) -> None:
    from synthgen.commands.submit import jobs_client

    out = tmp_path / "digits"
    result = cli("submit", "pipelines/digits.yaml", "--address", head.dashboard, "--output", str(out),
                 "--set", "classes.count=2", "--set", "sampler.steps=4", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    ray_job = ray_job_of(result)
    assert f"output: {out}" in result.stdout
    assert "done: 20 images in 1 shards" in result.stdout  # the driver's log, streamed
    assert status_of(out)["complete"] is True
    assert cli("verify", str(out)).returncode == 0
    assert sample_ids(out) == list(range(20))
    # The default ships this synthgen to the cluster (py_modules), with the job's payload.
    info = jobs_client(head.dashboard).get_job_info(ray_job)
    assert info.runtime_env["py_modules"] and info.runtime_env["working_dir"]
    listed = cli("jobs", "--address", head.dashboard, "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["ray_job"] == ray_job)
    assert row["status"] == "SUCCEEDED" and row["output"] == str(out)
    assert row["job_id"] == status_of(out)["job_id"]


def test_failed_job_wait_exits_nonzero_with_the_cause(head: raynodes.RayNode, tmp_path: Path) -> None:
    """The model is resolved where the job runs: a path the cluster lacks fails the job there,
    and `--wait` exits with the driver's code (2: a user's mistake) and its error line."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(tmp_path / "no-such-model", tmp_path / "out"))
    result = cli("submit", str(spec), "--address", head.dashboard, "--wait", "--no-ship-package")
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: Ray job {ray_job_of(result)} failed: model.source: "), last
    assert "no-such-model" in last, last
    assert not (tmp_path / "out" / "job.json").exists()


@pytest.mark.slow
def test_cancel_stops_the_job_and_resume_finishes_it(head: raynodes.RayNode, class_model: Path,
                                                    tmp_path: Path) -> None:
    out, hold = tmp_path / "out", tmp_path / "hold"
    (tmp_path / "classes.csv").write_text("name\na\nb\nc\n")
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(
        class_model, out, classes={"count": 7, "source": "classes.csv"}, output__shard_size=2))
    hold.touch()  # the one actor commits shards 0 and 1, then waits in shard 2 while this exists
    with fault_plan("hold:2:*", hold=hold):
        submitted = cli("submit", str(spec), "--address", head.dashboard, "--no-ship-package")
        assert submitted.returncode == 0, submitted.stderr
        ray_job = ray_job_of(submitted)
        # The job carries the resolved spec and manifest: the user's files may go away at once.
        spec.unlink()
        (tmp_path / "classes.csv").unlink()
        raynodes.wait_until(lambda: len(markers(out)) == 2, timeout=240, what="two committed shards")
        running = status_of(out)  # `synthgen status` while the job runs
        assert not running["complete"] and running["shards_committed"] == 2
        cancelled = cli("cancel", ray_job, "--address", head.dashboard)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"{ray_job}: STOPPED" in cancelled.stdout and f"synthgen resume {out}" in cancelled.stdout
    before = markers(out)
    state = status_of(out)
    assert not state["complete"] and state["shards_committed"] == 2 and state["shards_total"] == 11
    assert not (out / "_lock.json").exists(), "the stopped driver must release the job lock"
    listed = json.loads(cli("jobs", "--address", head.dashboard, "--json").stdout)
    assert next(r for r in listed if r["ray_job"] == ray_job)["status"] == "STOPPED"

    resumed = cli("resume", str(out), "--address", head.gcs_address, env={"RAY_AUTH_MODE": "token"})
    assert resumed.returncode == 0, resumed.stderr
    assert status_of(out)["complete"] is True
    assert cli("verify", str(out)).returncode == 0
    assert sample_ids(out) == list(range(21))
    after = markers(out)
    assert {name: after[name] for name in before} == before, "resume must keep committed shards"


@pytest.mark.parametrize("args", [["submit", "pipelines/digits.yaml"], ["jobs"], ["cancel", "x"]])
def test_no_cluster_there_is_a_one_line_user_error(args: list[str]) -> None:
    result = cli(*args, "--address", f"http://127.0.0.1:{raynodes.free_port()}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --address:") and "8265" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_submit_needs_an_address() -> None:
    result = cli("submit", "pipelines/digits.yaml")
    assert result.returncode == 2 and "--address http://HEAD:8265" in result.stderr
