"""job.json: the job an output holds, written once by the first run, typed.

It keeps the resolved spec (credentials redacted) and manifest, so that a resume never depends
on the user's files; the model's source, revision, family and license as the first run resolved
them; the versions that made the data; and a summary of the plan.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.plan import Plan
from synthgen.storage.layout import JOB_FILE
from synthgen.storage.redact import redact_spec
from synthgen.storage.store import Store


@dataclass(frozen=True)
class ModelRecord:
    source: str
    revision: str | None
    family: str | None
    license: str | None = None
    # A class-conditional model's class id per entry and where it came from (plan_checks.label_table).
    labels: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    plan: Plan
    model: ModelRecord
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def to_json(self) -> dict[str, Any]:
        data = self.plan.to_json()
        data["spec"] = redact_spec(data["spec"])
        summary = {k: v for k, v in self.plan.summary().items() if k != "per_class"}
        return {"job_id": self.job_id, **data, "plan": summary, "model": redact_spec(vars(self.model)),
                "versions": self.versions, "created_at": self.created_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        model = data.get("model") or {}
        return cls(job_id=data["job_id"], plan=Plan.from_json(data),
                   model=ModelRecord(model.get("source", data["spec"]["model"]["source"]),
                                     model.get("revision"), model.get("family"), model.get("license"),
                                     model.get("labels")),
                   versions=dict(data.get("versions") or {}), created_at=str(data.get("created_at")))


def find_job_record(store: Store) -> JobRecord | None:
    """The job the output holds, or None when it holds none yet."""
    if not store.exists(JOB_FILE):
        return None
    try:
        return JobRecord.from_json(json.loads(store.read_bytes(JOB_FILE)))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise UserError("URI", store.uri, f"its job.json is corrupt ({type(exc).__name__}: {exc}); "
                        "it is not a job synthgen can read") from None


def read_job_record(store: Store) -> JobRecord:
    record = find_job_record(store)
    if record is None:
        raise UserError("URI", store.uri, "holds no synthgen job (no job.json); check the path")
    return record
