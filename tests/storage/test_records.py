"""Every on-disk record: it round-trips, reads the layout synthgen wrote before records carried
a format_version (version 1), refuses a newer synthgen's file with one line (exit 2), and names
a corrupt or wrong-typed file, on local disk and on S3 (moto over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthgen.commands.sweep import SWEEP_FILE, SweepRecord, read_sweep
from synthgen.errors import UserError
from synthgen.output.catalog import SuccessRecord, read_failures, read_success
from synthgen.storage.commit import CommitMarker
from synthgen.storage.layout import LOCK_FILE, SUCCESS_FILE, failure_path
from synthgen.storage.lock import LockRecord, read_lock
from synthgen.storage.records import FailureRecord, read_failure_records
from synthgen.storage.store import Store, json_bytes
from synthgen.storage.versioned import MAX_DEPTH, CorruptRecord, Record
from tests.storage.test_commit import STORED as MARKER

# Each record as a99db13 and earlier wrote it: no format_version.
OLD: dict[type[Record], dict[str, Any]] = {
    CommitMarker: MARKER,
    LockRecord: {"token": "t", "host": "h", "boot_id": "b", "pid_ns": "pid:[1]", "pid": 7,
                 "pid_started": 9, "started_at": 1.5, "heartbeat_at": 2.5},
    FailureRecord: {"shard": 2, "error": "boom", "attempts": 3, "failed_at": 4.5},
    SuccessRecord: {"job_id": "ac970c4966f0ed80", "samples": 20, "shards": 4, "finished_at": 1.0},
    SweepRecord: {"sweep": {"axes": [], "per_class": 2, "cells": []}, "results": None},
}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return Store(str(tmp_path / "out"))
    request.getfixturevalue("s3")
    return Store(f"s3://bucket/{tmp_path.name}")


@pytest.mark.parametrize("kind", list(OLD), ids=lambda k: k.__name__)
def test_old_layouts_read_and_round_trip(kind: type[Record]) -> None:
    old = kind.from_json(OLD[kind])
    assert old.format_version == 1
    written = old.to_json()
    assert {**OLD[kind], "format_version": kind.FORMAT} == written  # nothing added, nothing lost
    assert kind.from_bytes(old.to_bytes()).to_json() == written


@pytest.mark.parametrize("kind", list(OLD), ids=lambda k: k.__name__)
def test_a_newer_version_is_refused_with_one_line(kind: type[Record]) -> None:
    with pytest.raises(UserError) as refused:
        kind.from_json({**OLD[kind], "format_version": kind.FORMAT + 1}, "out/x.json")
    line = str(refused.value)
    assert "\n" not in line and "out/x.json" in line and "upgrade synthgen" in line


@pytest.mark.parametrize("kind", list(OLD), ids=lambda k: k.__name__)
def test_wrong_types_unknown_fields_and_deep_nesting_are_corrupt(kind: type[Record]) -> None:
    first = next(iter(OLD[kind]))
    deep: Any = 0
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    bad = [{**OLD[kind], first: [1]}, {**OLD[kind], "surprise": 1}, {**OLD[kind], "format_version": "2"},
           {**OLD[kind], "surprise": deep}, [OLD[kind]]]
    for data in bad:
        with pytest.raises(CorruptRecord):
            kind.from_json(data)
    for blob in (b"{", b"\xff", b" " * (kind.MAX_BYTES + 1)):
        with pytest.raises(CorruptRecord):
            kind.from_bytes(blob)


def test_records_on_a_store_are_named_when_corrupt_and_refused_when_newer(store: Store) -> None:
    store.put_bytes(failure_path(2), json_bytes(OLD[FailureRecord]))
    store.put_bytes(failure_path(3), b'{"shard": 3, "error": 5, "attempts": 1}')
    assert read_failures(store) == {2: FailureRecord.from_json(OLD[FailureRecord])}
    assert [p.rel for p in read_failure_records(store).problems] == [failure_path(3)]
    store.put_bytes(failure_path(2), json_bytes({**OLD[FailureRecord], "format_version": 9}))
    with pytest.raises(UserError, match="format_version 9"):
        read_failures(store)

    store.put_bytes(SUCCESS_FILE, json_bytes(OLD[SuccessRecord]))
    assert read_success(store) == SuccessRecord.from_json(OLD[SuccessRecord])
    store.put_bytes(LOCK_FILE, b'{"token": 5}')
    assert read_lock(store) == {"token": None}  # a corrupt lock: a holder of no token
    store.put_bytes(LOCK_FILE, json_bytes({**OLD[LockRecord], "format_version": 2}))
    with pytest.raises(UserError, match="upgrade synthgen"):
        read_lock(store)


def test_a_corrupt_sweep_json_is_named(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    store.put_bytes(SWEEP_FILE, json.dumps({"sweep": []}).encode())
    with pytest.raises(UserError, match="sweep.json is corrupt"):
        read_sweep(store)
