"""Reading synthgen's own state under an output (`_commits/`, `_failed/`): robust to strays.

Every file there is a record synthgen wrote, the temp file a killed writer of synthgen's left
(its own, no problem: finalize removes it), or a problem named by its path: a stray (a name
synthgen never writes), or a corrupt record
(not JSON, wrong fields, a marker pointing outside data/). Nothing here raises for a bad file:
status and resume go on with the good records, verify reports the problems, repair fixes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from synthgen.storage.commit import CommitMarker
from synthgen.storage.layout import COMMITS_DIR, FAILED_DIR, failure_path, marker_path, own_temp, shard_index
from synthgen.storage.store import Store
from synthgen.storage.versioned import CorruptRecord, Record

log = logging.getLogger("synthgen")


class FailureRecord(Record):
    """`_failed/shard-NNNNN.json`: a shard's last failure, until it commits or the job finishes.
    Version 1 is every layout written so far; a record read back is checked against its name."""

    shard: int
    error: str
    attempts: int
    failed_at: float = 0.0


@dataclass(frozen=True)
class Problem:
    """A file under the output that is not what synthgen expects there."""

    rel: str
    reason: str
    ours: bool  # synthgen's own name (a corrupt record or a temp file): repair may remove it

    def __str__(self) -> str:
        return f"{self.rel}: {self.reason}"


@dataclass(frozen=True)
class Records:
    """The good records of one folder by shard index, and the problems found beside them."""

    good: dict[int, Any] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


def read_marker_records(store: Store) -> Records:
    return _read(store, COMMITS_DIR, _marker)


def read_failure_records(store: Store) -> Records:
    return _read(store, FAILED_DIR, _failure)


def _read(store: Store, folder: str, parse: Any) -> Records:
    names = [name for name in store.list(folder) if not own_temp(name, folder)]  # finalize's to remove
    problems = [_stray(folder, name) for name in names if shard_index(name) is None]
    wanted = {f"{folder}/{name}": index for name in names if (index := shard_index(name)) is not None}
    good: dict[int, Any] = {}
    blobs = store.read_many(list(wanted))
    problems += [Problem(rel, "unreadable (a folder, or removed while read)", ours=False)
                 for rel in wanted if rel not in blobs]
    for rel, blob in blobs.items():
        index = wanted[rel]
        try:
            good[index] = parse(blob, index)
        except CorruptRecord as exc:
            problems.append(Problem(rel, f"corrupt: {exc}", ours=True))
    for problem in problems:
        log.warning("ignoring %s", problem)
    return Records(good, tuple(problems))


def _stray(folder: str, name: str) -> Problem:
    return Problem(f"{folder}/{name}", "not a file synthgen writes here", ours=False)


def _marker(blob: bytes, index: int) -> CommitMarker:
    marker = CommitMarker.from_bytes(blob, marker_path(index))
    if marker.shard != index:
        raise CorruptRecord(f"it names shard {marker.shard}")
    return marker


def _failure(blob: bytes, index: int) -> FailureRecord:
    record = FailureRecord.from_bytes(blob, failure_path(index))
    if record.shard != index:
        raise CorruptRecord(f"it names shard {record.shard}")
    return record
