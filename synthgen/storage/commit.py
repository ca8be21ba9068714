"""The commit marker: the truth about a shard (docs/reference/format.md: the commit protocol), typed.

A shard is done iff its marker exists. The marker names the data file and holds what a reader
needs to trust it (row count, byte size, sha256, the sample_id range, the attempt), plus what
the worker measured (time, batch size, per-class diversity of its images).
"""

from __future__ import annotations

from typing import Any, ClassVar

from synthgen.storage.layout import DATA_DIR, data_shard, marker_path, path_problem
from synthgen.storage.lock import check_fence
from synthgen.storage.store import Store
from synthgen.storage.versioned import CorruptRecord, Record


class CommitMarker(Record):
    """`_commits/shard-NNNNN.json`. Version 2 added `node_id`; a version 1 marker reads as one
    without it (a synthgen that knows only version 1 refuses a version 2 marker, never misreads it)."""

    FORMAT: ClassVar[int] = 2

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
    diversity: dict[str, list[int | float]] = {}  # label -> PairStats list
    committed_by: str | None = None  # "driver" where the store ignores create-only writes
    node_id: str | None = None  # the Ray node that made it (the host names a machine, not a node)

    @property
    def path(self) -> str:
        return marker_path(self.shard)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        for optional in ("committed_by", "node_id"):
            if data[optional] is None:
                del data[optional]  # as markers were before it existed
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "a commit marker") -> CommitMarker:
        """A marker checked field by field, and its file: a stray or corrupt file raises CorruptRecord."""
        marker = super().from_json(data, where)
        marker.check_file()
        return marker

    def check_file(self) -> None:
        """The data file must be this shard's, under data/: a marker never points elsewhere."""
        problem = path_problem(self.file)
        folder, _, name = str(self.file).rpartition("/")
        if problem or folder != DATA_DIR or data_shard(name) != self.shard:
            raise CorruptRecord(f"its file {self.file!r} is not a data file of shard {self.shard}")


def read_marker(store: Store, shard: int) -> CommitMarker:
    return CommitMarker.from_bytes(store.read_bytes(marker_path(shard)), marker_path(shard))


# The one commit of a shard: its marker is created only if absent, and the loser of a race
# deletes its own data file. Workers call it after putting their data file; where the store
# ignores create-only writes, the driver calls it alone, under the job lock.
def commit_marker(store: Store, marker: CommitMarker, fence: str | None = None
                  ) -> tuple[CommitMarker, bool]:
    """(the shard's marker, whether it is this one): the first marker for a shard wins.
    `fence`: the job lock's token of the driver this commit is for; a commit for a driver that
    lost the lock is refused (raises JobFailed), and its data file becomes an orphan."""
    if fence is not None:
        check_fence(store, fence)
    if store.create_only(marker.path, marker.to_bytes()):
        return marker, True
    winner = read_marker(store, marker.shard)
    if winner.attempt == marker.attempt:
        return marker, True  # our own write: the store applied it, its reply was lost, the retry got 412
    store.delete(marker.file)
    return winner, False
