"""What the driver and its actors exchange: the job a worker runs, and what a shard came to.

Small, picklable and free of torch: the driver imports it without paying for torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from synthgen.manifest import Manifest
from synthgen.plan import Plan
from synthgen.spec import JobSpec
from synthgen.storage import Store, json_bytes, marker_path


@dataclass(frozen=True)
class JobContext:
    """Everything a worker needs, small and picklable: no filesystem, no model.

    `driver_commits`: the store ignores create-only writes, so workers put data files only and
    the driver, alone under the job lock, writes the markers.
    """

    spec: JobSpec
    manifest: Manifest
    driver_commits: bool = False

    @property
    def plan(self) -> Plan:
        return Plan(spec=self.spec, manifest=self.manifest)


@dataclass(frozen=True)
class ShardResult:
    """What an actor sends back: a few numbers, never image bytes."""

    shard: int
    rows: int
    seconds: float
    committed: bool
    marker: dict[str, Any]
    batch_size: int
    pending: bool = False  # data file put, marker left to the driver (`driver_commits`)


def commit_by_driver(store: Store, result: ShardResult) -> ShardResult:
    """The driver's half of `driver_commits`: write the marker unless one exists already."""
    if not result.pending:
        return result
    rel = marker_path(result.shard)
    if store.exists(rel):
        store.delete(result.marker["file"])
        return replace(result, committed=False, marker=store.read_json(rel), pending=False)
    marker = {**result.marker, "committed_by": "driver"}
    store.put_bytes(rel, json_bytes(marker))
    return replace(result, committed=True, marker=marker, pending=False)
