"""No hang, ever: what can never be placed is refused up front, a cluster's wait for placement
is bounded, every lock wait has a timeout, and a job.json edited by hand is named (exit 2)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synthgen.engine.driver import prepare, run_job
from synthgen.engine.lifecycle import RunOptions
from synthgen.errors import JobFailed
from synthgen.spec.load import validate_spec
from synthgen.spec.manifest_table import read_manifest
from synthgen.spec.plan import Plan
from synthgen.storage.layout import JOB_FILE, LOCK_FILE
from synthgen.storage.store import Store
from tests.conftest import ROOT, synthgen, tiny_spec, write_spec
from tests.trust.conftest import put


def embedded(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on the embedded one-node Ray: no RAY_ADDRESS inherited from anywhere."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, "-m", "synthgen.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


@pytest.mark.parametrize(("change", "field"), [
    ({"compute__cpus_per_worker": (os.cpu_count() or 1) + 62}, "compute.cpus_per_worker"),
    ({"model__device": "cuda"}, "model.device"),
])
def test_what_the_embedded_ray_can_never_place_is_refused_up_front(
        tmp_path: Path, class_model: Path, change: dict[str, Any], field: str) -> None:
    if field == "model.device" and Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU")
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, tmp_path / "out", **change))
    done = embedded("run", str(spec))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and field in done.stderr and "--address" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_cluster_that_cannot_place_the_actors_is_waited_for_a_bounded_time(
        tmp_path: Path, class_model: Path, ray_address: str) -> None:
    spec = tiny_spec(class_model, tmp_path / "out", compute__cpus_per_worker=64,
                     compute__placement_timeout_s=3)
    started = time.monotonic()
    with pytest.raises(JobFailed, match=r"waited 3 s \(compute.placement_timeout_s\).*64 CPU"):
        run_job(prepare(validate_spec(spec)), RunOptions(address=ray_address))
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out" / LOCK_FILE).exists()  # the lock was released on the way out


def test_the_placement_timeout_is_execution_only(class_model: Path, tmp_path: Path) -> None:
    def job_id(**change: Any) -> str:
        return Plan.build(validate_spec(tiny_spec(class_model, tmp_path / "o", **change))).job_id
    assert job_id() == job_id(compute__placement_timeout_s=5)


@pytest.fixture
def stopped_in_lock_swap(tmp_path: Path, class_model: Path) -> Iterator[tuple[Path, Path]]:
    """A real driver, SIGSTOPped while it holds the output folder's flock (its heartbeat swaps
    the lock every few ms); SIGCONT and killed (with its process group) at the end."""
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, tmp_path / "out"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen([sys.executable, "-m", "synthgen.cli", "run", str(spec)], cwd=ROOT,
                              env={**env, "SYNTHGEN_LOCK_HEARTBEAT_S": "0.002"}, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _stop_inside_flock(driver, tmp_path / "out")
        yield spec, tmp_path / "out"
    finally:
        os.killpg(driver.pid, signal.SIGCONT)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


def _stop_inside_flock(driver: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + 120
    while not (out / LOCK_FILE).exists():
        assert driver.poll() is None and time.monotonic() < deadline, "the driver never took the lock"
        time.sleep(0.05)
    fd = os.open(out, os.O_RDONLY)
    try:
        while time.monotonic() < deadline:
            os.kill(driver.pid, signal.SIGSTOP)
            time.sleep(0.01)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                return  # stopped with the flock held
            os.kill(driver.pid, signal.SIGCONT)
            time.sleep(0.003)
        pytest.fail("never caught the driver inside its flock")
    finally:
        os.close(fd)


def test_takeover_of_a_stopped_driver_ends_naming_what_it_waited_for(
        stopped_in_lock_swap: tuple[Path, Path]) -> None:
    spec, out = stopped_in_lock_swap
    started = time.monotonic()
    done = embedded("run", str(spec), "--takeover")
    assert time.monotonic() - started < 60
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]  # after the warning that it takes the lock over
    assert "flock of the output folder" in error and "output.uri" in error and "stopped" in error


DEEP = "nested 100,000 deep"


def _edit(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        record = record[int(part)] if isinstance(record, list) else record[part]
    record[leaf] = value


def _huge_count(record: dict[str, Any], store: Store) -> None:
    """A huge count edited into a job.json of the first layout (its manifest inline), which every
    output made before the manifest file still has; the manifest file itself is sha256-checked."""
    manifest = read_manifest(store.read_bytes(record.pop("manifest")["file"])).to_json()
    record.pop("format_version")
    record["manifest"] = manifest
    _edit(record, "manifest.entries.0.count", 10**15)


@pytest.mark.parametrize("corrupt", [
    _huge_count,
    lambda r, _: _edit(r, "spec.output.shard_size", "many"),  # a wrong type
    lambda r, _: _edit(r, "manifest.entries", {"a": 1}),  # a wrong shape
    lambda r, _: _edit(r, "spec.name", DEEP),  # deep nesting
], ids=["huge-count", "wrong-type", "wrong-shape", "deep-nesting"])
@pytest.mark.parametrize("command", ["verify", "status"])
def test_an_edited_job_record_is_named_with_exit_2(finished: Any, command: str,
                                                   corrupt: Callable[[dict[str, Any], Store], None]) -> None:
    store: Store = finished.store
    record = json.loads(store.read_bytes(JOB_FILE))
    corrupt(record, store)
    put(store, JOB_FILE, json.dumps(record).replace(f'"{DEEP}"', "[" * 100_000 + "]" * 100_000).encode())
    started = time.monotonic()
    done = synthgen(command, store.uri, timeout=60)
    assert time.monotonic() - started < 60
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "job.json is corrupt" in done.stderr
