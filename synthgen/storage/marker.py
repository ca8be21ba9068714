"""The commit marker: the truth about a shard (DESIGN.md: commit protocol), typed.

A shard is done iff its marker exists. The marker names the data file and holds what a reader
needs to trust it (row count, byte size, sha256, the sample_id range, the attempt), plus what
the worker measured (time, batch size, per-class diversity of its images).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from synthgen.storage.layout import marker_path
from synthgen.storage.store import Store, json_bytes


@dataclass(frozen=True)
class CommitMarker:
    shard: int
    file: str
    rows: int
    bytes: int
    sha256: str
    first_sample_id: int
    last_sample_id: int
    attempt: str
    attempt_no: int
    job_id: str
    host: str
    seconds: float
    batch_size: int
    committed_at: float
    diversity: dict[str, list[float]] = field(default_factory=dict)  # label -> PairStats list
    committed_by: str | None = None  # "driver" where the store ignores create-only writes

    @property
    def path(self) -> str:
        return marker_path(self.shard)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.committed_by is None:
            del data["committed_by"]
        return data

    def to_bytes(self) -> bytes:
        return json_bytes(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommitMarker:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_bytes(cls, data: bytes) -> CommitMarker:
        return cls.from_json(json.loads(data))


def read_marker(store: Store, shard: int) -> CommitMarker:
    return CommitMarker.from_bytes(store.read_bytes(marker_path(shard)))
