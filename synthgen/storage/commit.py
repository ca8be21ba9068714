"""The one commit of a shard: its marker is created only if absent, and the loser of a race
deletes its own data file. Workers call it after putting their data file; where the store
ignores create-only writes, the driver calls it alone, under the job lock."""

from __future__ import annotations

from synthgen.storage.lock import check_fence
from synthgen.storage.marker import CommitMarker, read_marker
from synthgen.storage.store import Store


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
