"""The typed commit marker and the one commit function, on local disk and on S3 (moto and SeaweedFS
over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthgen.storage.commit import CommitMarker, commit_marker, read_marker
from synthgen.storage.layout import PROBE_DIR, data_path, marker_path, shard_index
from synthgen.storage.store import Store
from tests.helpers.s3server import SERVERS, fresh_s3

# A marker exactly as the worker wrote it before markers were typed: the format is the contract.
STORED = {
    "shard": 3, "file": "data/shard-00003-00aaaabbbbcc.parquet", "rows": 5, "bytes": 1234,
    "sha256": "ab" * 32, "first_sample_id": 15, "last_sample_id": 19, "attempt": "00aaaabbbbcc",
    "attempt_no": 0, "job_id": "22014dc43b14286c", "host": "h", "seconds": 1.5, "batch_size": 4,
    "committed_at": 1.0, "diversity": {"0": [5, 10, 1.2, 0]},
}


def marker(attempt: str, shard: int = 3) -> CommitMarker:
    return CommitMarker.from_json({**STORED, "format_version": CommitMarker.FORMAT}).model_copy(
        update={"shard": shard, "attempt": attempt, "file": data_path(shard, attempt)})


def test_marker_round_trips_the_stored_format() -> None:
    typed = CommitMarker.from_json(STORED)
    written = {**STORED, "format_version": 2}  # no other key added, none lost
    assert typed.to_json() == written and json.loads(typed.to_bytes()) == written
    assert CommitMarker.from_json(written).to_json() == written
    driver = typed.model_copy(update={"committed_by": "driver"})
    assert driver.to_json() == {**written, "committed_by": "driver"}  # only when set
    on_ray = typed.model_copy(update={"node_id": "ab" * 28})
    assert on_ray.to_json() == {**written, "node_id": "ab" * 28}  # only when made on Ray
    assert CommitMarker.from_json(on_ray.to_json()).node_id == "ab" * 28
    assert typed.path == marker_path(3) == "_commits/shard-00003.json"


def test_shard_index_reads_only_synthgen_names() -> None:
    assert shard_index("shard-00003.json") == 3
    assert shard_index("shard-123456.json") == 123456
    for name in ("shard-3.json", "shard-00003.json.tmp", ".shard-00003.json.x.tmp", "notes.txt",
                 "shard-00003-a.parquet"):
        assert shard_index(name) is None, name


@pytest.fixture(params=["local", *SERVERS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Local disk, moto and SeaweedFS (a real store, whose refusals s3fs reads differently)."""
    if request.param == "local":
        return Store(str(tmp_path / "out"))
    fresh_s3(request, request.param)  # this process's AWS env points at it
    return Store(f"s3://bucket/{tmp_path.name}")


def test_the_probe_recognises_create_only_writes(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """Each store here honours If-None-Match: workers commit, not the driver alone."""
    assert store.probe_create_only() and store.conditional
    assert "does not honour create-only writes" not in caplog.text
    assert store.list(PROBE_DIR) == []


def test_first_marker_wins_and_the_loser_deletes_its_own_file(store: Store) -> None:
    first, second = marker("00aaaaaaaaaa"), marker("01bbbbbbbbbb")
    for m in (first, second):
        store.put_bytes(m.file, b"data")
    assert commit_marker(store, first) == (first, True)
    assert commit_marker(store, second) == (first, False)
    assert store.list("data") == [first.file.split("/")[1]]  # the loser's data file is gone
    assert read_marker(store, 3) == first


def test_a_lost_reply_to_our_own_marker_still_wins(store: Store) -> None:
    """The store applied the put but the reply was lost: the retry finds our own marker."""
    ours = marker("00cccccccccc")
    store.put_bytes(ours.file, b"data")
    store.put_bytes(ours.path, ours.to_bytes())
    assert commit_marker(store, ours) == (ours, True)
    assert store.exists(ours.file)


def test_driver_commits_are_the_same_commit(store: Store) -> None:
    """A store that ignores create-only writes: the driver, alone under the lock, checks first."""
    store.conditional = False
    first, second = (marker(attempt).model_copy(update={"committed_by": "driver"})
                     for attempt in ("00aaaaaaaaaa", "01bbbbbbbbbb"))
    for m in (first, second):
        store.put_bytes(m.file, b"data")
    assert commit_marker(store, first) == (first, True)
    assert commit_marker(store, second) == (first, False)
    assert store.list("data") == [first.file.split("/")[1]]
