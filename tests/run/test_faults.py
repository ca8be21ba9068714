"""Faults at real seams: actors killed at each step of the commit protocol, a shard that always
fails, racing attempts, a flaky store (503 SlowDown, resets, timeouts, lost replies), a store
without create-only writes, an upload failing half-way, accelerator OOM, a read-only or full
local disk. Each ends with the invariants: verify passes, each planned sample_id once.
Worker faults come from the test harness (tests/helpers/faults.py), which the product knows
nothing of: the last tests check that.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from synthgen.engine.driver import prepare
from synthgen.engine.job import JobContext
from synthgen.engine.lifecycle import JobOutput, RunOptions
from synthgen.engine.worker import Worker
from synthgen.output.catalog import Catalog, job_status, read_markers
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from synthgen.storage.store import Store
from tests.conftest import ROOT, synthgen, tiny_spec, write_spec
from tests.helpers import faults
from tests.helpers.faults import fault_plan
from tests.helpers.s3server import (
    BUCKET,
    FAULTS,
    FLAKY_ON_BOTH_STORES,
    S3,
    FaultPlan,
    Rule,
    assert_complete,
    committed_ids,
    wait_for,
)

TOTAL = 21  # tiny_spec: 3 classes x 7 images, shards of 5


def job_context(spec: dict) -> JobContext:
    plan = Plan.build(validate_spec(spec))
    return JobContext(spec=plan.spec, manifest=plan.manifest)


@pytest.mark.slow
def test_actor_deaths_and_an_always_failing_shard(
        ray_address: str, s3: S3, class_model: Path, tmp_path: Path) -> None:
    # A multipart upload that a killed writer left pending in this output.
    fs = s3.fs
    key = "e/data/shard-00009-00deadbeef00.parquet"  # a name synthgen writes
    upload = fs.call_s3("create_multipart_upload", Bucket=BUCKET, Key=key)
    fs.call_s3("upload_part", Bucket=BUCKET, Key=key, PartNumber=1,
               UploadId=upload["UploadId"], Body=b"x" * 1024)
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://bucket/e",
                                                       compute__max_retries=2))
    with fault_plan("crash:0:0,crash_after_upload:1:0,crash_after_marker:2:0,raise:3:*"):
        run = synthgen("run", str(spec), address=ray_address, env=s3.env)

    assert run.returncode == 1, run.stderr
    assert "1 shard(s) failed: shard 3: InjectedFault: injected failure in shard 3" in run.stderr, run.stderr
    assert "synthgen resume s3://bucket/e" in run.stderr
    store = Store("s3://bucket/e")
    state = job_status(Catalog.read(store))
    assert not state["complete"]
    assert state["shards_committed"] == 4
    assert [f["shard"] for f in state["failed_shards"]] == [3]
    assert "injected failure in shard 3" in state["failed_shards"][0]["error"]
    markers = read_markers(store)
    assert markers[0].attempt_no == 1  # its actor died mid-shard
    assert markers[1].attempt_no == 1  # its actor died after the upload: attempt 0 is an orphan
    assert markers[2].attempt_no == 0  # its actor died after the marker: the marker stands
    assert any(name.startswith("shard-00001-00") for name in store.list("data"))

    resume = synthgen("resume", "s3://bucket/e", address=ray_address, env=s3.env)
    assert resume.returncode == 0, resume.stderr
    assert_complete(store, TOTAL)  # the orphan is gone too
    assert {i: read_markers(store)[i] for i in markers} == markers
    assert s3.pending_uploads() == []
    assert store.list("_failed") == []


@pytest.mark.slow
def test_flaky_store_is_retried_until_the_job_completes(
        ray_address: str, flaky_s3: S3, class_model: Path, tmp_path: Path) -> None:
    proxy = flaky_s3.proxy
    proxy.plan = FaultPlan(every=5, rules=[
        # The marker lands, its reply is lost, the retry gets 412: the worker must see that the
        # marker is its own and keep its data file.
        Rule("lost", "PUT", r"/_commits/shard-00001\.json"),
        Rule("slowdown", "PUT", r"/data/", times=2),
        Rule("stall", "PUT", r"/data/shard-00002"),
        Rule("reset", "GET", r"/_commits/"),
    ])
    spec = tiny_spec(class_model, "s3://bucket/f")
    spec["output"]["storage_options"] = {"config_kwargs": {"read_timeout": 1}}
    run = synthgen("run", str(write_spec(tmp_path / "job.yaml", spec)), address=ray_address,
                   env=flaky_s3.env)
    assert run.returncode == 0, run.stderr
    injected = dict(proxy.plan.injected)
    proxy.plan = FaultPlan()
    assert set(injected) == set(FAULTS) - {"deny"}, injected
    assert_complete(Store("s3://bucket/f"), TOTAL)


def test_lost_reply_to_a_create_only_write_is_recognised(flaky_s3: S3, class_model: Path) -> None:
    """The store applied the marker (or lock) but the reply was lost; the retry gets 412."""
    from synthgen.storage.lock import JobLock

    flaky_s3.proxy.plan = FaultPlan(rules=[Rule("lost", "PUT", r"/_commits/shard-00000\.json"),
                                           Rule("lost", "PUT", r"/_lock\.json")])
    worker = Worker(job_context(tiny_spec(class_model, "s3://bucket/k")), threads=1)
    result = worker.run_shard(0)
    assert result.committed
    assert worker.store.exists(result.marker.file)
    with JobLock.acquire(worker.store) as lock:
        lock.check()
    assert flaky_s3.proxy.plan.injected["lost"] == 2
    assert not worker.store.exists("_lock.json")


@pytest.mark.slow
def test_store_without_create_only_writes_gets_driver_commits(
        ray_address: str, flaky_s3: S3, class_model: Path, tmp_path: Path) -> None:
    flaky_s3.proxy.ignore_conditions = True
    store = Store("s3://bucket/g")
    assert not store.probe_create_only()
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://bucket/g"))
    run = synthgen("run", str(spec), address=ray_address, env=flaky_s3.env)
    assert run.returncode == 0, run.stderr
    assert "does not honour create-only writes" in run.stderr
    assert_complete(store, TOTAL)
    assert {m.committed_by for m in read_markers(store).values()} == {"driver"}
    assert store.list("_probe") == []


@FLAKY_ON_BOTH_STORES
def test_two_attempts_race_for_one_shard(
        flaky_s3: S3, class_model: Path, tmp_path: Path, faults_here) -> None:
    # Both attempts check for a marker, then wait at the gate; released together, they race.
    gate = tmp_path / "gate"
    gate.touch()
    job = job_context(tiny_spec(class_model, "s3://bucket/h"))
    workers = [Worker(job, threads=1) for _ in range(2)]
    results: list = [None, None]

    def attempt(i: int) -> None:
        results[i] = workers[i].run_shard(0, attempt_no=i)

    with faults_here("hold:0:*", hold=gate):
        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        checks = ("HEAD", "/bucket/h/_commits/shard-00000.json")
        wait_for(lambda: flaky_s3.proxy.plan.seen.count(checks) >= 2, "both marker checks")
        gate.unlink()
        for thread in threads:
            thread.join()
    assert sorted(r.committed for r in results) == [False, True]
    assert results[0].marker == results[1].marker
    store = Store("s3://bucket/h")
    assert store.list("data") == [results[0].marker.file.split("/")[-1]]  # the loser's is gone
    assert sorted(committed_ids(store)) == list(range(5))


def test_driver_commits_keep_the_first_marker(flaky_s3: S3, class_model: Path) -> None:
    flaky_s3.proxy.ignore_conditions = True  # the output, opened, leaves the commits to the driver
    prepared = prepare(validate_spec(tiny_spec(class_model, "s3://bucket/i")))
    with JobOutput.open(prepared, RunOptions()) as output:
        assert output.job.driver_commits
        worker = Worker(output.job, threads=1)
        first, second = worker.run_shard(1, 0), worker.run_shard(1, 1)
        assert not first.committed and not second.committed
        assert not worker.store.exists("_commits/shard-00001.json")  # workers never write markers
        assert output.commit(first).committed
        lost = output.commit(second)
    assert not lost.committed and lost.marker.file == first.marker.file
    store = Store("s3://bucket/i")
    assert store.list("data") == [first.marker.file.split("/")[-1]]


def test_out_of_memory_halves_the_batch_and_keeps_it(
        class_model: Path, tmp_path: Path, faults_here, caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker(job_context(tiny_spec(class_model, tmp_path / "out")), threads=1)
    with faults_here("oom:0:0"), caplog.at_level(logging.WARNING, logger="synthgen.worker"):
        result = worker.run_shard(0)
    assert "shard 0: out of memory, batch size now 2" in caplog.text
    assert "shard 0: out of memory, batch size now 1" in caplog.text
    assert result.batch_size == 1 and result.marker.batch_size == 1
    assert worker.run_shard(1).marker.batch_size == 1  # kept, though shard 1 has no fault
    assert sorted(committed_ids(worker.store)) == list(range(10))


def test_read_only_output_is_a_clear_error(class_model: Path, tmp_path: Path, read_only_dir: Path
                                           ) -> None:
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, read_only_dir / "out"))
    run = synthgen("run", str(spec))
    assert run.returncode == 2
    assert "Read-only file system" in run.stderr or "Permission denied" in run.stderr
    assert "Traceback" not in run.stderr
    assert list(read_only_dir.iterdir()) == []


def test_a_misspelt_fault_point_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown fault point 'crahs'.*valid points: raise, hold, crash"):
        faults.FaultPlan.parse("crash:0:0,crahs:1:0")
    with pytest.raises(ValueError, match="expected point:shard:attempt"):
        faults.FaultPlan.parse("crash:1")
    with pytest.raises(ValueError, match="neither a number nor"):
        faults.FaultPlan.parse("raise:one:*")
    with pytest.raises(ValueError, match="needs the gate file"):
        faults.FaultPlan.parse("hold:0:*")
    # A process reading a plan with a misspelt point (written past the checks) refuses it too.
    with fault_plan("raise:0:*"):
        faults.plan_path().write_text('{"rules": ["crash_after_uplaod:0:0"], "hold": null}')
        with pytest.raises(ValueError, match="unknown fault point 'crash_after_uplaod'"):
            faults.current_plan()
    assert faults.current_plan() == faults.FaultPlan()  # cleared at the end of the block


@pytest.mark.slow
def test_the_product_ignores_the_old_fault_variables(class_model: Path, tmp_path: Path) -> None:
    """A user's job with the variables the product once read: embedded Ray (its actors inherit
    this environment) and no harness, so every shard commits at its first attempt."""
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, out, classes__count=2))
    gate = tmp_path / "gate"
    gate.touch()
    env = faults.without_harness({k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    env |= {"SYNTHGEN_FAULTS": "crash:0:0,raise:1:*,hold:*:*", "SYNTHGEN_FAULTS_HOLD": str(gate)}
    run = subprocess.run([sys.executable, "-m", "synthgen.cli", "run", str(spec)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    store = Store(str(out))
    assert {i: m.attempt_no for i, m in read_markers(store).items()} == {0: 0, 1: 0}
    assert_complete(store, 6)


def test_no_product_module_mentions_fault_injection() -> None:
    sources = sorted((ROOT / "synthgen").rglob("*.py"))
    assert len(sources) > 50
    for needle in ("SYNTHGEN_FAULTS", faults.ENV, "tests.helpers", "InjectedFault"):
        assert [str(p) for p in sources if needle in p.read_text()] == [], needle
