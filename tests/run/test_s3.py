"""S3 as a first-class output, through the real CLI, real Ray and a moto server over HTTP.

Covers: a run into s3:// with model and manifest read from s3:// (verify passes, every planned
row once, the secret key nowhere), the driver SIGKILLed then `resume` (plus corruption found by
`verify` and fixed by `resume --repair`), a changed spec refused without a write, and the job
lock (a second driver refused, `--takeover`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthgen.output.catalog import Catalog, job_status, read_markers
from synthgen.storage.store import Store, read_parquet
from tests.conftest import ROOT, synthgen, tiny_spec, write_spec
from tests.helpers.faults import child_env, fault_plan
from tests.helpers.s3server import BUCKET, S3, SECRET, assert_complete, wait_for

TOTAL = 21  # tiny_spec: 3 classes x 7 images


@contextlib.contextmanager
def start_held(spec: Path, address: str, env: dict[str, str], hold: str, *args: str
               ) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A driver in the background whose actor waits before `hold`'s shard while a file exists
    (the fault plan holds for the block: leave it once the gate is gone)."""
    gate = spec.parent / "hold"
    gate.touch()
    with fault_plan(f"hold:{hold}:*", hold=gate):
        driver = subprocess.Popen([sys.executable, "-m", "synthgen.cli", "run", str(spec), *args],
                                  env=child_env({**os.environ, **env, "RAY_ADDRESS": address}),
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        yield driver, gate


def lock_holder(s3: S3, prefix: str) -> dict | None:
    try:
        return json.loads(s3.fs.cat_file(f"{BUCKET}/{prefix}/_lock.json"))
    except FileNotFoundError:
        return None


def test_run_on_s3_with_remote_model_and_manifest_leaks_no_secret(
        ray_address: str, s3: S3, class_model: Path, tmp_path: Path) -> None:
    s3.fs.put(str(class_model), f"{BUCKET}/models/class-unet", recursive=True)
    s3.fs.pipe_file(f"{BUCKET}/manifests/classes.csv", b"name\na\nb\nc\n")
    spec = tiny_spec("s3://bucket/models/class-unet", "s3://bucket/a")
    spec["classes"] = {"source": "s3://bucket/manifests/classes.csv", "count": 7}
    # Secrets do not belong in a spec or a command line, but a user may put them there: they
    # must not leak from there either.
    spec["output"]["storage_options"] = {"key": "synthgen-test-key-id", "secret": SECRET}
    run = synthgen("run", str(write_spec(tmp_path / "job.yaml", spec)),
                   "--set", "model.storage_options.key=synthgen-test-key-id",
                   "--set", f"model.storage_options.secret={SECRET}", address=ray_address, env=s3.env)
    assert run.returncode == 0, run.stderr
    assert "does not honour create-only writes" not in run.stderr  # moto does: workers commit
    verify = synthgen("verify", "s3://bucket/a", env=s3.env)
    assert verify.returncode == 0, verify.stderr

    store = Store("s3://bucket/a")
    assert_complete(store, TOTAL)
    labels = read_parquet(store.read_bytes("index.parquet")).column("label_name")
    assert sorted(labels.to_pylist()) == ["a"] * 7 + ["b"] * 7 + ["c"] * 7
    assert s3.pending_uploads() == []
    written = s3.objects("a")
    assert {"job.json", "README.md", "index.parquet", "_SUCCESS"} <= set(written)
    assert not [key for key, blob in written.items() if SECRET.encode() in blob]
    assert SECRET not in run.stdout + run.stderr + verify.stdout + verify.stderr
    assert not ray_logs_containing(SECRET)


def ray_logs_containing(text: str) -> list[str]:
    """Files of this session's Ray (the actors' logs, runtime env agent...) holding `text`."""
    import ray

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    return [str(p) for p in session.rglob("*.log") if p.is_file() and text in p.read_text(errors="ignore")]


@pytest.mark.slow
def test_sigkilled_driver_resumes_and_repair_fixes_corruption(
        ray_address: str, s3: S3, class_model: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://bucket/b", output__shard_size=3))
    store = Store("s3://bucket/b")
    with start_held(spec, ray_address, s3.env, hold="2") as (driver, gate):  # 0 and 1 commit, 2 waits
        try:
            wait_for(lambda: len(store.list("_commits")) >= 2, "two commit markers")
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.communicate()
            gate.unlink()
    assert not store.exists("_SUCCESS")
    assert job_status(Catalog.read(store))["driver"]["pid"] == driver.pid  # the dead driver's lock stays
    before = read_markers(store)
    assert sorted(before) == [0, 1]

    resume = synthgen("resume", "s3://bucket/b", address=ray_address, env=s3.env)
    assert resume.returncode == 0, resume.stderr
    assert "taking over the job lock" in resume.stderr
    assert_complete(store, TOTAL)
    after = read_markers(store)
    assert {i: after[i] for i in before} == before  # committed shards were not redone
    assert lock_holder(s3, "b") is None

    # A corrupted data file under a valid marker, and a missing one: verify names both...
    original = store.read_bytes(after[0].file)
    store.put_bytes(after[0].file, original[:-40] + bytes(40))
    store.delete(after[1].file)
    verify = synthgen("verify", "s3://bucket/b", env=s3.env)
    assert verify.returncode == 1
    assert f"shard 0 ({after[0].file}): sha256 does not match" in verify.stderr
    assert f"shard 1 ({after[1].file}): data file missing" in verify.stderr
    # ... and resume --repair regenerates exactly those two, bit for bit on CPU.
    repair = synthgen("resume", "s3://bucket/b", "--repair", address=ray_address, env=s3.env)
    assert repair.returncode == 0, repair.stderr
    assert_complete(store, TOTAL)
    repaired = read_markers(store)
    assert {i for i in after if repaired[i] != after[i]} == {0, 1}
    regenerated = read_parquet(store.read_bytes(repaired[0].file))
    assert regenerated.column("image").to_pylist() == \
        read_parquet(original).column("image").to_pylist()


def test_changed_spec_on_the_same_output_is_refused_and_writes_nothing(
        s3: S3, class_model: Path, tmp_path: Path) -> None:
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.spec.load import load_spec

    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://bucket/c"))
    claim_output(prepare(load_spec(spec)))  # the job, as its first write left it
    before = s3.objects("c")

    run = synthgen("run", str(spec), "--set", "seed=1", env=s3.env)
    assert run.returncode == 2
    assert "holds another job" in run.stderr
    resume = synthgen("resume", "s3://bucket/c", "--set", "sampler.steps=9", env=s3.env)
    assert resume.returncode == 2
    assert "holds another job" in resume.stderr
    assert s3.objects("c") == before
    assert len(s3.fs.find(BUCKET)) == len(before)


def test_second_driver_is_refused_and_takeover_works(
        ray_address: str, s3: S3, class_model: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://bucket/d"))
    day_ago = time.time() - 86400
    foreign = {"token": "f00", "host": "elsewhere", "pid": 4242, "started_at": day_ago,
               "heartbeat_at": day_ago}
    s3.fs.pipe_file(f"{BUCKET}/d/_lock.json", json.dumps(foreign).encode())

    refused = synthgen("run", str(spec), address=ray_address, env=s3.env)
    assert refused.returncode == 2
    assert "in use by another synthgen driver (pid 4242 on host elsewhere" in refused.stderr
    assert "--takeover" in refused.stderr
    assert not s3.fs.exists(f"{BUCKET}/d/job.json")

    with start_held(spec, ray_address, s3.env, "0", "--takeover") as (first, gate):
        try:
            wait_for(lambda: (lock_holder(s3, "d") or {}).get("pid") == first.pid, "the takeover")
            second = synthgen("run", str(spec), address=ray_address, env=s3.env)
        finally:
            gate.unlink()
            out, err = first.communicate(timeout=300)
    assert second.returncode == 2
    assert f"in use by another synthgen driver (pid {first.pid} on host" in second.stderr
    assert first.returncode == 0, err
    assert_complete(Store("s3://bucket/d"), TOTAL)
    assert lock_holder(s3, "d") is None


def test_missing_job_or_bucket_is_a_user_error(s3: S3, class_model: Path, tmp_path: Path) -> None:
    resume = synthgen("resume", "s3://bucket/nothing-here", env=s3.env)
    assert resume.returncode == 2
    assert "holds no synthgen job" in resume.stderr
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://no-such-bucket/x"))
    run = synthgen("run", str(spec), env=s3.env)
    assert run.returncode == 2
    assert "check that the bucket exists" in run.stderr
