"""`synthgen resume --repair`: un-commit shards whose data is missing or corrupt, so the run
regenerates them (each sample's seed is fixed, so the new shard holds the same samples).

Runs under the job lock. _SUCCESS goes first, so a crash half-way leaves an incomplete job that
a later `resume` finishes; the bad data files become orphans, removed when the job finishes.
"""

from __future__ import annotations

import logging

from synthgen.plan import Plan
from synthgen.status import check_shard, committed_markers
from synthgen.storage import SUCCESS_FILE, Store, marker_path

log = logging.getLogger("synthgen")


def repair(store: Store, plan: Plan) -> list[int]:
    """The shards un-committed because their data did not match their marker."""
    markers = committed_markers(store)
    bad = {}
    for index, marker in sorted(markers.items()):
        problems = check_shard(store, plan, index, marker)
        if problems:
            bad[index] = problems
    if not bad:
        log.info("repair: every committed shard matches its marker")
        return []
    store.delete(SUCCESS_FILE)
    for index, problems in bad.items():
        log.warning("repair: shard %d (%s): %s; it will be regenerated", index,
                    markers[index].get("file"), "; ".join(problems))
        store.delete(marker_path(index))
    return sorted(bad)
