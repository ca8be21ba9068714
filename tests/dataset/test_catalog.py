"""The catalog of an output: job.json (typed, written once) and the commit markers, read in one place."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import Worker
from synthgen.errors import UserError
from synthgen.output.catalog import Catalog, read_failures, read_markers
from synthgen.output.job_record import read_job_record
from synthgen.spec.load import validate_spec
from synthgen.storage.store import Store
from tests.conftest import tiny_spec


@pytest.fixture
def started(tmp_path: Path, class_model: Path, one_torch_thread: None) -> Store:
    """A job claimed and two of its five shards committed, as a running job leaves its output."""
    spec = tiny_spec(class_model, tmp_path / "out")
    spec["output"]["storage_options"] = {"secret": "not-in-job-json", "endpoint_url": "http://x"}
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    worker = Worker(prepared.job, threads=1)
    for index in (0, 3):
        worker.run_shard(index)
    return prepared.store


def test_job_record_keeps_its_format_and_drops_secrets(started: Store) -> None:
    stored = json.loads((Path(started.root) / "job.json").read_text())
    assert set(stored) == {"format_version", "job_id", "spec", "manifest", "plan", "model", "versions",
                           "created_at"}
    assert stored["format_version"] == 2 and set(stored["manifest"]) == {"file", "sha256", "bytes", "entries"}
    assert (Path(started.root) / stored["manifest"]["file"]).is_file()  # the manifest, beside it
    assert stored["spec"]["output"]["storage_options"] == {"endpoint_url": "http://x"}
    assert set(stored["model"]) == {"source", "revision", "family", "license", "labels"}
    record = read_job_record(started)
    assert record.job_id == record.plan.job_id == stored["job_id"]
    assert replace(record.plan, recorded_id=None).job_id == stored["job_id"]  # the manifest hashes back


def test_catalog_reads_committed_shards_only(started: Store) -> None:
    (Path(started.root) / "_commits" / "notes.txt").write_text("a file synthgen did not write")
    catalog = Catalog.read(started)
    assert [m.shard for m in catalog.shards] == [0, 3] and sorted(read_markers(started)) == [0, 3]
    assert catalog.rows == 10 and catalog.class_names == ("a", "b", "c")
    assert catalog.shard_of(16).shard == 3 and catalog.shard_of(7) is None
    assert read_failures(started) == {}


def test_an_output_without_a_job_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="holds no synthgen job"):
        Catalog.open(str(tmp_path))
