"""The catalog of an output: its job (job.json) and its committed shards (the commit markers).

The one reader of an output's state: status, resume, verify, show, the readers, export and the
card all start here. Readers follow the markers, never a listing of `data/`: during a run it
may hold orphans (lost races, crashed attempts), and only a marker says a data file is complete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from synthgen.errors import UserError
from synthgen.output.job_record import JobRecord, read_job_record
from synthgen.spec.plan import Plan
from synthgen.storage.commit import CommitMarker
from synthgen.storage.layout import SUCCESS_FILE
from synthgen.storage.lock import current_holder, holder_state
from synthgen.storage.records import FailureRecord, Problem, read_failure_records, read_marker_records
from synthgen.storage.store import Store
from synthgen.storage.versioned import Record

log = logging.getLogger("synthgen")


class SuccessRecord(Record):
    """`_SUCCESS`, written last: the job is complete. Version 1 is every layout written so far."""

    job_id: str
    samples: int
    shards: int
    finished_at: float


def read_success(store: Store) -> SuccessRecord | None:
    """The job's completion record; None while the job is not complete."""
    try:
        blob = store.read_bytes(SUCCESS_FILE)
    except FileNotFoundError:
        return None
    return SuccessRecord.from_bytes(blob, SUCCESS_FILE)


@dataclass(frozen=True)
class Catalog:
    store: Store
    record: JobRecord
    markers: dict[int, CommitMarker]
    problems: tuple[Problem, ...] = ()  # stray or corrupt files under _commits/ (never fatal)

    @classmethod
    def read(cls, store: Store) -> Catalog:
        record = read_job_record(store)
        found = read_marker_records(store)
        markers, problems = dict(found.good), list(found.problems)
        for index in [i for i in markers if i >= record.plan.num_shards]:
            problems.append(Problem(markers.pop(index).path, "a shard the plan does not have",
                                    ours=True))
        return cls(store, record, markers, tuple(problems))

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

    @property
    def missing(self) -> list[int]:
        """The planned shards that are not committed (yet)."""
        return [i for i in range(self.plan.num_shards) if i not in self.markers]

    def require_complete(self, partial: bool) -> list[int]:
        """Refuse an unfinished job unless `partial`; then the missing shards, named in a warning."""
        missing = self.missing
        if not missing:
            return []
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        what = (f"{len(missing)} of {self.plan.num_shards} shards ({self.plan.total - self.rows} "
                f"of {self.plan.total} samples) are not committed: shards {shown}")
        if not partial:
            raise UserError("URI", self.store.uri, f"the job is not finished; {what}. Finish it "
                            f"with `synthgen resume {self.store.uri}`, or pass --partial to export "
                            "what is committed")
        log.warning("exporting a partial job: %s", what)
        return missing

    def shard_of(self, sample_id: int) -> CommitMarker | None:
        """The committed shard holding `sample_id`, or None while it is not committed."""
        return self.markers.get(self.plan.shard_of(sample_id).index)

    def split_shards(self, split: str | None) -> tuple[CommitMarker, ...]:
        """The committed shards of one split (all with None); an unknown split is a UserError."""
        if split is None:
            return self.shards
        if split not in self.plan.split_names:
            raise UserError("split", split, f"this output's splits are {', '.join(self.plan.split_names)}")
        return tuple(m for m in self.shards if self.plan.shard(m.shard).split == split)


def read_markers(store: Store) -> dict[int, CommitMarker]:
    """Shard index -> its commit marker: the truth about which shards are done."""
    return read_marker_records(store).good


def read_failures(store: Store) -> dict[int, FailureRecord]:
    """Shard index -> the record of its last failure (error, attempts), for shards not committed."""
    return read_failure_records(store).good


# What an output holds: committed shards and samples per class, failures, completeness.
def job_status(catalog: Catalog) -> dict[str, Any]:
    store, plan, markers = catalog.store, catalog.plan, catalog.markers
    driver = current_holder(store)
    failed = {i: f for i, f in read_failures(store).items() if i not in markers}
    planned = plan.per_class()
    committed = plan.per_class([plan.shard(i) for i in sorted(markers)])
    return {
        "job_id": plan.job_id,
        "uri": store.uri,
        "format": plan.spec.output.format,
        "complete": len(markers) == plan.num_shards and store.exists(SUCCESS_FILE),
        "shards_total": plan.num_shards,
        "shards_committed": len(markers),
        "samples_total": plan.total,
        "samples_committed": catalog.rows,
        "per_class": {name: {"planned": n, "committed": committed.get(name, 0)}
                      for name, n in planned.items()},
        "failed_shards": [{"shard": i, "error": f.error, "attempts": f.attempts}
                          for i, f in sorted(failed.items())],
        "driver": driver,  # the driver holding the job lock, if any
        "driver_state": holder_state(driver) if driver else None,  # alive, dead or silent
    }
