"""The catalog of an output: its job (job.json) and its committed shards (the commit markers).

The one reader of an output's state: status, resume, verify, show, the readers, export and the
card all start here. Readers follow the markers, never a listing of `data/`: during a run it
may hold orphans (lost races, crashed attempts), and only a marker says a data file is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from synthgen.dataset.job_record import JobRecord, read_job_record
from synthgen.spec.plan import Plan
from synthgen.storage.layout import COMMITS_DIR, FAILED_DIR, shard_index
from synthgen.storage.marker import CommitMarker
from synthgen.storage.store import Store


@dataclass(frozen=True)
class Catalog:
    store: Store
    record: JobRecord
    markers: dict[int, CommitMarker]

    @classmethod
    def read(cls, store: Store) -> Catalog:
        return cls(store, read_job_record(store), read_markers(store))

    @classmethod
    def open(cls, uri: str, storage_options: dict[str, Any] | None = None) -> Catalog:
        return cls.read(Store(uri, dict(storage_options or {})))

    @property
    def plan(self) -> Plan:
        return self.record.plan

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.plan.manifest.class_names

    @cached_property
    def shards(self) -> tuple[CommitMarker, ...]:
        """The committed shards in shard order."""
        return tuple(marker for _, marker in sorted(self.markers.items()))

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.markers.values())

    def shard_of(self, sample_id: int) -> CommitMarker | None:
        """The committed shard holding `sample_id`, or None while it is not committed."""
        return self.markers.get(self.plan.shard_of(sample_id).index)


def read_markers(store: Store) -> dict[int, CommitMarker]:
    """Shard index -> its commit marker: the truth about which shards are done."""
    found = store.read_many_json(_records(store, COMMITS_DIR))
    return {shard_index(rel.rsplit("/", 1)[1]): CommitMarker.from_json(data) for rel, data in found.items()}


def read_failures(store: Store) -> dict[int, dict[str, Any]]:
    """Shard index -> the record of its last failure (error, attempts), for shards not committed."""
    found = store.read_many_json(_records(store, FAILED_DIR))
    return {shard_index(rel.rsplit("/", 1)[1]): data for rel, data in found.items()}


def _records(store: Store, folder: str) -> list[str]:
    return [f"{folder}/{name}" for name in store.list(folder) if shard_index(name) is not None]
