"""Robust reading of synthgen's own state, and deletes of its own files only (disk and S3).

Attacks: stray, partial and corrupt files under _commits/, _failed/ and data/; a marker whose
`file` points outside data/; foreign files and uploads that finalize must not remove.
"""

from __future__ import annotations

import json
from typing import Any

from synthgen.output.catalog import Catalog, job_status
from synthgen.output.finalize import finalize, remove_orphans
from synthgen.output.verify import repair, verify
from synthgen.storage.layout import SUCCESS_FILE
from tests.trust.conftest import ON_EVERY_BACKEND, put


def test_stray_and_corrupt_records_are_named_never_fatal_and_repaired(finished: Any) -> None:
    store = finished.store
    good = store.read_json("_commits/shard-00001.json")
    put(store, "_commits/notes.txt", b"mine")                       # foreign
    put(store, "_commits/shard-00000.json", b'{"shard": 0, "file"')  # truncated
    put(store, "_commits/shard-00001.json",                          # escapes the output
        json.dumps({**good, "file": "../../etc/passwd"}).encode())
    put(store, "_commits/shard-00002.json", json.dumps({**good, "shard": "2"}).encode())  # wrong type
    put(store, "_commits/shard-00009.json", json.dumps({**good, "shard": 9}).encode())  # beyond the plan
    put(store, "_failed/shard-00001.json", b"\xff\xfe not json")
    put(store, "_failed/README", b"mine too")

    catalog = Catalog.read(store)
    assert catalog.markers == {}
    state = job_status(catalog)  # no crash
    assert state["shards_committed"] == 0 and state["failed_shards"] == []
    problems = verify(store)
    for rel in ("_commits/notes.txt", "_commits/shard-00000.json", "_commits/shard-00001.json",
                "_commits/shard-00002.json", "_commits/shard-00009.json",
                "_failed/shard-00001.json", "_failed/README"):
        assert any(p.startswith(f"{rel}: ") for p in problems), (rel, problems)
    assert any("'../../etc/passwd'" in p for p in problems)

    repair(catalog)
    assert not store.exists(SUCCESS_FILE)
    assert store.list("_commits") == ["notes.txt"]  # corrupt records gone, the foreign file stays
    assert store.list("_failed") == ["README"]


@ON_EVERY_BACKEND
def test_finish_removes_only_synthgen_orphans(finished: Any) -> None:
    store = finished.store
    put(store, "data/shard-00000-0099aabbccdd.parquet", b"an orphan of a lost race")
    put(store, "data/my-notes.parquet", b"the user's")
    put(store, "data/shard-1.parquet", b"not synthgen's naming either")
    put(store, "data/sub/shard-00000-00aa.parquet", b"in a sub-folder")
    keep_uploads = []
    if store.is_s3:
        bucket, _, key = store.path("data/theirs.bin").partition("/")
        store.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        keep_uploads.append(key)
        ours = store.path("data/shard-00004-00deadbeef00.parquet").partition("/")[2]
        store.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=ours)
    catalog = Catalog.read(store)
    remove_orphans(catalog, {m.file for m in catalog.shards})
    names = set(store.list("data"))
    assert "shard-00000-0099aabbccdd.parquet" not in names
    assert {"my-notes.parquet", "shard-1.parquet", "sub"} <= names
    assert store.read_bytes("data/sub/shard-00000-00aa.parquet") == b"in a sub-folder"
    if store.is_s3:
        bucket = store.root.partition("/")[0]
        pending = store.fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", [])
        assert [u["Key"] for u in pending] == keep_uploads
    finalize(catalog)  # foreign files never make the job fail
    assert verify(store) == [f"data/{n}: not a file synthgen writes here"
                             for n in ("my-notes.parquet", "shard-1.parquet", "sub")]


def test_partial_temp_record_is_named_and_removed_by_repair(finished: Any) -> None:
    store = finished.store
    put(store, "_commits/.shard-00001.json.0a1b.tmp", b'{"sh')
    assert "_commits/.shard-00001.json.0a1b.tmp: a partial write of a killed writer" in verify(store)
    repair(Catalog.read(store))
    assert ".shard-00001.json.0a1b.tmp" not in store.list("_commits")
    assert len(Catalog.read(store).markers) == 3  # the good markers are untouched
