"""Robust reading of synthgen's own state, and deletes of its own files only (disk and S3).

Attacks: stray, partial and corrupt files under _commits/, _failed/ and data/; a marker whose
`file` points outside data/; foreign files and uploads that finalize must not remove.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.errors import UserError
from synthgen.output.catalog import Catalog, job_status
from synthgen.output.finalize import finalize, remove_orphans
from synthgen.output.verify import repair, verify
from synthgen.spec.load import validate_spec
from synthgen.storage.layout import SUCCESS_FILE
from tests.conftest import tiny_spec
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


TEMP = ".{}.0123456789abcdef0123456789abcdef.tmp"  # Store._local_write's temp name (layout.temp_name)


def test_user_files_named_like_shards_are_never_orphans(finished: Any) -> None:
    store = finished.store
    for name in ("shard-00000-backup.parquet", "shard-00001-a.parquet", "shard-00002-00x.tar",
                 ".shard-00000-backup.parquet.0123456789abcdef0123456789abcdef.tmp"):
        put(store, f"data/{name}", b"the user's")
        finalize(Catalog.read(store))
        assert store.read_bytes(f"data/{name}") == b"the user's", name


def test_killed_writers_temp_files_are_synthgens_own(finished: Any) -> None:
    """Temps of job.json, the lock, markers, failure records and data files (named by the one
    rule, layout.temp_name): never a problem for verify, removed when the job finishes."""
    store = finished.store
    temps = [TEMP.format("job.json"), TEMP.format("_lock.json"),
             "_commits/" + TEMP.format("shard-00001.json"), "_failed/" + TEMP.format("shard-00002.json"),
             "data/" + TEMP.format("shard-00000-00aabbccdd00.parquet")]
    for rel in temps:
        put(store, rel, b'{"sh')
    assert verify(store) == []
    finalize(Catalog.read(store))
    for rel in temps:
        assert not store.exists(rel), rel
    assert verify(store) == [] and len(Catalog.read(store).markers) == 3


def test_a_temp_that_is_not_synthgens_is_foreign(finished: Any) -> None:
    store = finished.store
    put(store, "_commits/" + TEMP.format("notes.txt"), b"mine")
    assert verify(store) == [f"_commits/{TEMP.format('notes.txt')}: not a file synthgen writes here"]


def test_a_killed_claims_temp_does_not_make_the_output_foreign(tmp_path: Path, class_model: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / TEMP.format("job.json")).write_text('{"form')  # the first run was killed mid-claim
    (out / TEMP.format("_lock.json")).write_text("{")
    claim_output(prepare(validate_spec(tiny_spec(class_model, out))))
    assert (out / "job.json").is_file()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / TEMP.format("notes.txt")).write_text("mine")
    with pytest.raises(UserError, match="holds no synthgen job"):
        claim_output(prepare(validate_spec(tiny_spec(class_model, tmp_path / "mine"))))


def test_a_job_json_another_driver_creates_between_look_and_listing_is_not_foreign(
        tmp_path: Path, class_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race CI once lost: a second driver looked for job.json before the first created it,
    then listed the output after. The lock, not the listing, must decide who runs."""
    import synthgen.engine.lifecycle as lifecycle

    out = tmp_path / "out"
    checked = prepare(validate_spec(tiny_spec(class_model, out)))
    claim_output(checked)  # the first driver's claim
    monkeypatch.setattr(lifecycle, "find_job_record", lambda store: None)  # our look came first
    assert lifecycle.holds_job(checked) is False  # not refused as foreign: on to the lock
