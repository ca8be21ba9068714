"""job.json: the job an output holds, written once by the first run, typed and versioned.

It keeps the resolved spec (credentials redacted), the model's source, revision, family and
license as the first run resolved them, the versions that made the data and a summary of the
plan. The resolved manifest, so that a resume never depends on the user's files, is a Parquet
file beside it (spec/manifest_table.py) that job.json names with its sha256: job.json stays a
few KB for any manifest. Version 1 (no `format_version`) held the manifest inline; it still reads.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthgen.errors import UserError
from synthgen.spec.load import validate_spec
from synthgen.spec.manifest import Manifest
from synthgen.spec.manifest_table import CorruptManifest, manifest_bytes, read_manifest
from synthgen.spec.plan import Plan
from synthgen.spec.strict import check_bounds
from synthgen.storage.layout import JOB_FILE, manifest_path
from synthgen.storage.redact import redact_spec
from synthgen.storage.store import Store
from synthgen.storage.versioned import CorruptRecord, Record

STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class ModelRecord(BaseModel):
    """The model as the first run resolved it: a resume on another revision is refused."""

    model_config = STRICT
    source: str
    revision: str | None = None
    family: str | None = None
    license: str | None = None
    # A class-conditional model's class id per entry and where it came from (plan_checks.label_table).
    labels: list[dict[str, Any]] | None = None


class ManifestRef(BaseModel):
    """Where job.json's manifest is, and what it must hash to."""

    model_config = STRICT
    file: str
    sha256: str
    bytes: int
    entries: int


class JobFile(Record):
    """job.json as it is on disk."""

    FORMAT = 2
    MAX_BYTES = 1 << 30  # a version-1 job.json holds its manifest: 354 MB for a million prompts
    job_id: str
    spec: dict[str, Any]
    manifest: ManifestRef | None = None  # version 2
    inline_manifest: dict[str, Any] | None = Field(default=None, exclude=True)  # version 1: read only
    plan: dict[str, Any] = {}  # the plan's summary, for people reading the file
    model: ModelRecord | None = None  # absent in the earliest version-1 files
    versions: dict[str, str] = {}
    created_at: str | None = None

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("format_version", 1) != 1:
            return data
        return {**data, "manifest": None, "inline_manifest": data.get("manifest")}

    @model_validator(mode="after")
    def _one_manifest(self) -> JobFile:
        if (self.manifest is None) == (self.inline_manifest is None):
            raise ValueError("a job.json names its manifest file, or (version 1) holds the manifest")
        return self


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    plan: Plan
    model: ModelRecord
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def job_file(self, manifest: ManifestRef) -> JobFile:
        summary = {k: v for k, v in self.plan.summary().items() if k != "per_class"}
        return JobFile(job_id=self.job_id, spec=redact_spec(self.plan.spec.model_dump(mode="json")),
                       manifest=manifest, plan=summary,
                       model=ModelRecord(**redact_spec(self.model.model_dump())),
                       versions=self.versions, created_at=self.created_at)


def write_job_record(store: Store, record: JobRecord) -> bool:
    """The manifest file, then job.json, each created only if absent; False when job.json was
    there already. The manifest's name is its content's hash: one already there is this one."""
    blob = manifest_bytes(record.plan.manifest)
    digest = hashlib.sha256(blob).hexdigest()
    rel = manifest_path(digest)
    store.create_only(rel, blob)
    ref = ManifestRef(file=rel, sha256=digest, bytes=len(blob), entries=len(record.plan.manifest.entries))
    return store.create_only(JOB_FILE, record.job_file(ref).to_bytes())


def find_job_record(store: Store) -> JobRecord | None:
    """The job the output holds, or None when it holds none yet."""
    if not store.exists(JOB_FILE):
        return None
    try:
        job = JobFile.from_bytes(store.read_bytes(JOB_FILE), f"{store.uri}/{JOB_FILE}")
    except CorruptRecord as exc:
        raise _corrupt(store, f"CorruptRecord: {exc}") from None
    try:
        plan = Plan(spec=validate_spec(job.spec), manifest=_manifest(store, job), recorded_id=job.job_id)
        check_bounds(plan)  # the bounds of a new spec: an edited count must not make a reader loop
    except UserError as exc:  # a field out of bounds or of the wrong type: name the file too
        raise _corrupt(store, f"{exc.field} = {exc.value!r}: {exc.fix}") from None
    except (CorruptRecord, CorruptManifest, KeyError, TypeError, AttributeError, ValueError, IndexError,
            RecursionError) as exc:
        raise _corrupt(store, f"{type(exc).__name__}: {exc}") from None
    model = job.model or ModelRecord(source=plan.spec.model.source)
    return JobRecord(job_id=job.job_id, plan=plan, model=model, versions=job.versions,
                     created_at=str(job.created_at))


def _corrupt(store: Store, problem: str) -> UserError:
    return UserError("URI", store.uri, f"its {JOB_FILE} is corrupt or was edited ({problem[:300]}); "
                     "it is not a job synthgen can read: restore it, or start a new output")


def _manifest(store: Store, job: JobFile) -> Manifest:
    ref = job.manifest
    if ref is None:
        return Manifest.from_json(job.inline_manifest or {})
    if ref.file != manifest_path(ref.sha256):
        raise CorruptRecord(f"its manifest {ref.file!r} is not the file of sha256 {ref.sha256}")
    try:
        blob = store.read_bytes(ref.file)
    except FileNotFoundError:
        raise CorruptRecord(f"its manifest file {ref.file} is missing") from None
    if len(blob) != ref.bytes or hashlib.sha256(blob).hexdigest() != ref.sha256:
        raise CorruptRecord(f"its manifest file {ref.file} does not match its sha256")
    manifest = read_manifest(blob)
    if len(manifest.entries) != ref.entries:
        raise CorruptRecord(f"its manifest file {ref.file} holds {len(manifest.entries)} entries, "
                            f"not {ref.entries}")
    return manifest


def read_job_record(store: Store) -> JobRecord:
    record = find_job_record(store)
    if record is None:
        raise UserError("URI", store.uri, "holds no synthgen job (no job.json); check the path")
    return record
