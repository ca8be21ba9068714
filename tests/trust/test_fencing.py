"""Fencing of the job lock (disk, moto and SeaweedFS): heartbeat and release change only their own lock,
a driver that lost its lock stops dispatching and commits nothing more, pids are not trusted
across pid namespaces or boots."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from synthgen.errors import JobFailed
from synthgen.output.catalog import read_markers
from synthgen.storage import lock as lock_module
from synthgen.storage.commit import commit_marker
from synthgen.storage.conditional import read_tagged, replace_if
from synthgen.storage.layout import LOCK_FILE
from synthgen.storage.lock import JobLock, _provably_dead, read_lock
from synthgen.storage.store import Store
from tests.conftest import ROOT, tiny_spec, write_spec
from tests.helpers.faults import child_env, fault_plan
from tests.helpers.s3server import wait_for
from tests.storage.test_commit import marker
from tests.trust.conftest import ON_EVERY_BACKEND


@pytest.fixture
def store(backend: Callable[[str], str]) -> Store:
    out = Store(backend("locked"))
    out.probe_create_only()
    return out


@ON_EVERY_BACKEND
def test_a_taken_over_driver_never_overwrites_or_deletes_the_new_lock(store: Store) -> None:
    first = JobLock.acquire(store)
    second = JobLock.acquire(store, takeover=True)
    assert read_lock(store)["token"] == second.token
    assert not first._beat_once()  # its heartbeat sees another token and writes nothing
    assert read_lock(store)["token"] == second.token
    with pytest.raises(JobFailed, match="lost the job lock"):
        first.check()
    first.release()
    assert read_lock(store)["token"] == second.token  # its release leaves the new lock alone
    with pytest.raises(JobFailed):
        commit_marker(store, marker("00aaaa", shard=0), fence=first.token)
    assert read_markers(store) == {}
    assert commit_marker(store, marker("00bbbb", shard=0), fence=second.token)[1]
    second.release()
    assert read_lock(store) is None


@ON_EVERY_BACKEND
def test_swap_on_a_stale_version_fails(store: Store) -> None:
    store.put_bytes(LOCK_FILE, b'{"token": "a"}')
    _, tag = read_tagged(store, LOCK_FILE)
    store.put_bytes(LOCK_FILE, b'{"token": "b"}')  # another driver, between read and write
    assert not replace_if(store, LOCK_FILE, b'{"token": "a", "heartbeat_at": 1}', tag)
    assert read_lock(store) == {"token": "b"}
    _, tag = read_tagged(store, LOCK_FILE)
    assert replace_if(store, LOCK_FILE, b'{"token": "c"}', tag)


def test_pids_are_trusted_only_in_this_boot_and_pid_namespace() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = {"host": socket.gethostname(), "pid": dead.pid, "boot_id": lock_module._boot_id(),
            "pid_ns": lock_module._pid_namespace()}
    assert _provably_dead(here)
    assert not _provably_dead({**here, "pid_ns": "pid:[4026531836]x"})  # another container
    assert not _provably_dead({**here, "boot_id": "another-boot"})
    assert not _provably_dead({k: v for k, v in here.items() if k != "pid_ns"})  # an old record
    assert not _provably_dead({**here, "pid": "12"})


def test_a_driver_that_lost_its_lock_stops_at_its_next_heartbeat(
        ray_address: str, tmp_path: Path, class_model: Path) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, out, output__shard_size=3))
    gate = tmp_path / "hold"
    gate.touch()
    env = child_env({**os.environ, "RAY_ADDRESS": ray_address, "SYNTHGEN_LOCK_HEARTBEAT_S": "1"})
    with fault_plan("hold:2:*", hold=gate):  # shards 0 and 1 commit, 2 waits at the gate
        driver = subprocess.Popen([sys.executable, "-m", "synthgen.cli", "run", str(spec)], env=env,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(list((out / "_commits").glob("shard-*.json"))) >= 2, "two markers")
            lock = json.loads((out / LOCK_FILE).read_text())
            (out / LOCK_FILE).write_text(json.dumps({**lock, "token": "the-new-holder"}))
            committed = set(read_markers(Store(str(out))))
            _, err = driver.communicate(timeout=120)
        finally:
            if driver.poll() is None:
                driver.send_signal(signal.SIGKILL)
            gate.unlink()
    assert driver.returncode == 1, err
    assert "lost the job lock" in err and "Traceback" not in err
    assert set(read_markers(Store(str(out)))) == committed  # nothing committed after the takeover
    assert json.loads((out / LOCK_FILE).read_text())["token"] == "the-new-holder"
    assert not (out / "_SUCCESS").exists() and not list((out / "_failed").glob("*"))
