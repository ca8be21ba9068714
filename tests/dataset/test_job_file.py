"""job.json version 2: small for any manifest (the manifest is a Parquet file beside it), the
same job_id for every spec, and outputs written before it (tests/data/legacy-a99db13, made by
commit a99db13: `synthgen run pipelines/digits.yaml --set classes.count=2 --set
output.shard_size=6 --set sampler.steps=2 --set compute.workers=1`) still read, verify and resume."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.errors import UserError
from synthgen.output.catalog import Catalog, job_status
from synthgen.output.job_record import JobRecord, ModelRecord, read_job_record, write_job_record
from synthgen.output.torch_dataset import open_dataset
from synthgen.output.verify import verify
from synthgen.spec.fingerprint import data_fields
from synthgen.spec.load import load_spec, validate_spec
from synthgen.spec.plan import Plan
from synthgen.storage.store import Store
from tests.conftest import ROOT, synthgen

LEGACY = ROOT / "tests" / "data" / "legacy-a99db13"
# Computed on 8d0799e, before job.json changed: the file layout must not move a job_id.
# The ids of the shipped specs as every earlier version computed them. sdxl-prompts.yaml reads
# its prompts from a file by path, and the resolved path is part of the spec's data: its id
# depends on where the checkout is, so it is held to the earlier formula below instead.
SHIPPED_JOB_IDS = {"cifar10-sd.yaml": "9f91baff1aef8a28", "digits.yaml": "1d11073c9ed5af98",
                   "imagenet100-dit.yaml": "449dd2f8cabc1399"}
SHIPPED = sorted(p.name for p in (ROOT / "pipelines").glob("*.yaml"))


def earlier_job_id(plan: Plan) -> str:
    """job_id as computed before the manifest was hashed in pieces: one JSON text, keys sorted."""
    payload = {"spec": data_fields(plan.spec), "manifest": plan.manifest.to_json()}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_spec_keeps_its_job_id(name: str) -> None:
    plan = Plan.build(load_spec(ROOT / "pipelines" / name))
    assert plan.job_id == earlier_job_id(plan)
    assert plan.job_id == SHIPPED_JOB_IDS.get(name, plan.job_id)


def claimed(out: Path, rows: int) -> Store:
    out.mkdir(parents=True)
    source = out.parent / f"{out.name}.jsonl"
    source.write_text("".join(json.dumps({"prompt": f"a photo {i}", "label": f"l{i % 10}"}) + "\n"
                              for i in range(rows)))
    plan = Plan.build(validate_spec({"prompts": {"source": str(source), "count": 2},
                                     "output": {"uri": str(out)}}))
    store = Store(str(out))
    assert write_job_record(store, JobRecord(plan.job_id, plan, ModelRecord(source="x")))
    return store


def test_job_json_does_not_grow_with_the_manifest(tmp_path: Path) -> None:
    small, large = claimed(tmp_path / "small", 10), claimed(tmp_path / "large", 50_000)
    sizes = [(Path(s.root) / "job.json").stat().st_size for s in (small, large)]
    assert sizes[1] - sizes[0] < 100 and sizes[1] < 4096  # digits of counts and paths, not rows
    record = read_job_record(large)
    assert record.plan.total == 100_000 and len(record.plan.manifest.entries) == 50_000
    assert record.plan.manifest.entries[49_999].prompts == ("a photo 49999",)
    state = job_status(Catalog.read(large))
    assert state["samples_total"] == 100_000 and state["per_class"]["l3"]["planned"] == 10_000
    manifest = next(Path(large.root).glob("manifest-*.parquet"))
    assert pq.read_table(manifest, columns=["count"]).num_rows == 50_000  # columnar, any reader


def test_a_second_claim_of_the_same_manifest_keeps_the_first(tmp_path: Path) -> None:
    store = claimed(tmp_path / "out", 10)
    record = read_job_record(store)
    assert not write_job_record(store, JobRecord(record.job_id, record.plan, record.model))


def test_a_newer_or_corrupt_job_json_is_refused_with_one_line(tmp_path: Path) -> None:
    store = claimed(tmp_path / "out", 10)
    job = json.loads((tmp_path / "out" / "job.json").read_text())
    (tmp_path / "out" / "job.json").write_text(json.dumps({**job, "format_version": 3}))
    done = synthgen("status", str(tmp_path / "out"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "upgrade synthgen" in done.stderr and "job.json" in done.stderr
    (tmp_path / "out" / "job.json").write_text(json.dumps(job))
    manifest = tmp_path / "out" / job["manifest"]["file"]
    manifest.write_bytes(manifest.read_bytes()[:-1] + b"x")
    with pytest.raises(UserError, match="does not match its sha256"):
        read_job_record(store)
    manifest.unlink()
    with pytest.raises(UserError, match="is missing"):
        read_job_record(store)
    (tmp_path / "out" / "job.json").write_text(json.dumps({**job, "job_id": 5}))
    with pytest.raises(UserError, match="corrupt"):
        read_job_record(store)


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    out = tmp_path / "legacy"
    shutil.copytree(LEGACY, out)
    return out


def test_an_output_of_a99db13_reads_and_verifies(legacy: Path) -> None:
    store = Store(str(legacy))
    catalog = Catalog.read(store)
    rebuilt = Plan.build(catalog.plan.spec, catalog.plan.manifest)
    assert catalog.plan.job_id == "ac970c4966f0ed80" == rebuilt.job_id
    assert job_status(catalog)["complete"] and verify(store) == []
    dataset = open_dataset(str(legacy))
    assert len(dataset) == 20 and len(dataset[0]) == 2  # (image, label)
    done = synthgen("status", str(legacy), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["samples_committed"] == 20


def test_an_output_of_a99db13_resumes_with_the_same_bytes(legacy: Path) -> None:
    marker = json.loads((legacy / "_commits" / "shard-00002.json").read_text())
    old = pq.read_table(legacy / marker["file"]).column("image").to_pylist()
    (legacy / "_commits" / "shard-00002.json").unlink()
    (legacy / "_SUCCESS").unlink()
    done = synthgen("resume", str(legacy), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert verify(Store(str(legacy))) == []
    again = json.loads((legacy / "_commits" / "shard-00002.json").read_text())
    assert again["file"] != marker["file"] and again["format_version"] == 2  # beside version 1 ones
    assert "node_id" not in marker and len(again["node_id"]) == 56  # the Ray node (hex) that made it
    new = pq.read_table(legacy / again["file"]).column("image").to_pylist()
    assert [hashlib.sha256(i["bytes"]).digest() for i in new] == \
        [hashlib.sha256(i["bytes"]).digest() for i in old]
    assert not list(legacy.glob("manifest-*.parquet"))  # its job.json stays version 1
    assert "format_version" not in json.loads((legacy / "job.json").read_text())

