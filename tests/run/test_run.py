"""End to end on a real local Ray: exact rows, resume, refusals, dead actors, failing shards."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.output.catalog import Catalog
from tests.conftest import ROOT, synthgen, tiny_spec, write_spec
from tests.helpers.dataset_outputs import committed_rows
from tests.helpers.faults import fault_plan


def read_rows(out: Path) -> dict[int, dict]:
    """sample_id -> row, following the commit markers (never a listing of data/)."""
    return {row["sample_id"]: row for row in committed_rows(out)}


def status(out: Path, address: str) -> dict:
    result = synthgen("status", str(out), "--json", address=address)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tree(out: Path) -> dict[str, float]:
    """Every file and its mtime."""
    return {str(p.relative_to(out)): p.stat().st_mtime for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, class_model: Path) -> tuple[Path, dict]:
    """One uninterrupted run, on the embedded local Ray (no address): the reference output."""
    base = tmp_path_factory.mktemp("finished")
    spec = write_spec(base / "spec.yaml", tiny_spec(class_model, base / "out"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-m", "synthgen.cli", "run", str(spec)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return base / "out", read_rows(base / "out")


def test_embedded_run_writes_exactly_the_plan(finished: tuple[Path, dict], ray_address: str) -> None:
    out, rows = finished
    assert sorted(rows) == list(range(21))
    plan = Catalog.open(str(out)).plan  # interleaved: each row is the class its plan says
    assert [rows[i]["label_name"] for i in range(21)] == [plan.sample(i).label_name for i in range(21)]
    names = [r["label_name"] for r in rows.values()]
    assert {name: names.count(name) for name in "abc"} == dict.fromkeys("abc", 7)
    assert {rows[i]["label"] for i in range(21)} == {0, 1, 2}
    state = status(out, ray_address)
    assert state["complete"] and state["shards_committed"] == state["shards_total"] == 5
    assert state["samples_committed"] == 21 and state["failed_shards"] == []
    assert state["per_class"]["b"] == {"planned": 7, "committed": 7}
    for name in ("job.json", "index.parquet", "README.md", "_SUCCESS"):
        assert (out / name).is_file()
    assert len(list((out / "data").iterdir())) == 5
    index = pq.read_table(out / "index.parquet")
    assert sorted(index.column("sample_id").to_pylist()) == list(range(21))
    assert "image" not in index.column_names
    # pyarrow's dataset reader over in-memory bytes once aborted most processes at exit (SIGABRT).
    for _ in range(5):
        result = synthgen("verify", str(out))
        assert (result.returncode, result.stderr) == (0, "")


def test_two_workers_same_bytes_and_rerun_is_a_noop(tmp_path: Path, class_model: Path,
                                                    ray_address: str,
                                                    finished: tuple[Path, dict]) -> None:
    out = tmp_path / "out"
    spec = tiny_spec(class_model, out, compute__workers=2)
    path = write_spec(tmp_path / "spec.yaml", spec)
    result = synthgen("run", str(path), address=ray_address)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    _, reference = finished
    assert {i: r["image"]["bytes"] for i, r in rows.items()} == {
        i: r["image"]["bytes"] for i, r in reference.items()}
    before = tree(out)
    again = synthgen("run", str(path), address=ray_address)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert tree(out) == before  # not even a run log: a run that does nothing writes nothing


def test_other_spec_on_same_output_is_refused(tmp_path: Path, class_model: Path,
                                              finished: tuple[Path, dict]) -> None:
    out, _ = finished
    before = tree(out)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, out, seed=1))
    result = synthgen("run", str(spec))
    assert result.returncode == 2
    assert "holds another job" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "; seed: 0 -> 1)" in result.stderr  # which fields differ (spec/plan.py)
    assert tree(out) == before


def test_dead_actor_is_replaced_and_its_shard_retried(tmp_path: Path, class_model: Path,
                                                      ray_address: str,
                                                      finished: tuple[Path, dict]) -> None:
    out = tmp_path / "out"
    path = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, out))
    with fault_plan("crash:1:0"):
        result = synthgen("run", str(path), address=ray_address)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "_commits/shard-00001.json").read_text())["attempt_no"] == 1
    rows = read_rows(out)
    assert rows[5]["image"]["bytes"] == finished[1][5]["image"]["bytes"]
    assert synthgen("verify", str(out)).returncode == 0


def test_failing_shard_is_reported_then_resumed(tmp_path: Path, class_model: Path,
                                                ray_address: str) -> None:
    out = tmp_path / "out"
    path = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, out))
    with fault_plan("raise:2:*"):
        result = synthgen("run", str(path), address=ray_address)
    assert result.returncode == 1
    assert "shard 2" in result.stderr and "injected failure" in result.stderr
    state = status(out, ray_address)
    assert not state["complete"] and state["shards_committed"] == 4
    assert [f["shard"] for f in state["failed_shards"]] == [2]
    assert state["failed_shards"][0]["attempts"] == 3
    assert not (out / "_SUCCESS").exists()
    resumed = synthgen("resume", str(out), address=ray_address)
    assert resumed.returncode == 0, resumed.stderr
    state = status(out, ray_address)
    assert state["complete"] and state["failed_shards"] == []
    assert sorted(read_rows(out)) == list(range(21))


@pytest.mark.slow
def test_sigkilled_driver_then_resume_matches_uninterrupted(tmp_path: Path, class_model: Path,
                                                            ray_address: str) -> None:
    spec = tiny_spec(class_model, tmp_path / "one", classes__count=40, compute__batch_size=2)
    reference = write_spec(tmp_path / "one.yaml", spec)
    assert synthgen("run", str(reference), address=ray_address).returncode == 0
    out = tmp_path / "two"
    spec["output"]["uri"] = str(out)
    path = write_spec(tmp_path / "two.yaml", spec)
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    driver = subprocess.Popen([sys.executable, "-m", "synthgen.cli", "run", str(path)], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 240
    while len(list(out.glob("_commits/shard-*.json"))) < 2:
        assert driver.poll() is None and time.monotonic() < deadline, "driver ended too early"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    committed = len(list(out.glob("_commits/shard-*.json")))
    assert 2 <= committed < 24 and not (out / "_SUCCESS").exists()
    resumed = synthgen("resume", str(out), address=ray_address)
    assert resumed.returncode == 0, resumed.stderr
    assert synthgen("verify", str(out)).returncode == 0
    a, b = read_rows(tmp_path / "one"), read_rows(out)
    assert sorted(b) == list(range(120))
    assert all(a[i]["label"] == b[i]["label"] and a[i]["image"]["bytes"] == b[i]["image"]["bytes"]
               for i in a)
    assert len(list((out / "data").iterdir())) == 24, "orphans are removed at the end"


def test_verify_names_a_corrupted_shard(tmp_path: Path, finished: tuple[Path, dict]) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    marker = json.loads((out / "_commits/shard-00003.json").read_text())
    data = (out / marker["file"]).read_bytes()
    (out / marker["file"]).write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    result = synthgen("verify", str(out))
    assert result.returncode == 1
    assert "shard 3" in result.stderr and "sha256" in result.stderr
    assert io.BytesIO(data).getbuffer().nbytes == marker["bytes"]
