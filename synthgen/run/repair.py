"""`synthgen resume --repair`: un-commit shards whose data is missing or corrupt, so the run
regenerates them (each sample's seed is fixed, so the new shard holds the same samples).

Runs under the job lock. _SUCCESS goes first, so a crash half-way leaves an incomplete job that
a later `resume` finishes; the bad data files become orphans, removed when the job finishes.
"""

from __future__ import annotations

import logging

from synthgen.dataset.catalog import Catalog
from synthgen.dataset.verify import check_shard, state_problems
from synthgen.storage.layout import DATA_DIR, SUCCESS_FILE

log = logging.getLogger("synthgen")


def repair(catalog: Catalog) -> list[int]:
    """The shards un-committed because their data did not match their marker; corrupt or
    partial records of synthgen's own are removed, foreign files only named."""
    store = catalog.store
    bad = {}
    for marker in catalog.shards:
        problems = check_shard(store, catalog.plan, marker)
        if problems:
            bad[marker.shard] = (marker, problems)
    records = [p for p in state_problems(catalog) if not p.rel.startswith(f"{DATA_DIR}/")]
    for problem in records:
        if not problem.ours:
            log.warning("repair: leaving %s alone (synthgen did not write it)", problem)
    removable = [p for p in records if p.ours]
    if not bad and not removable:
        log.info("repair: every committed shard matches its marker")
        return []
    store.delete(SUCCESS_FILE)
    for problem in removable:
        log.warning("repair: removing %s", problem)
        store.delete(problem.rel)
    for index, (marker, problems) in bad.items():
        log.warning("repair: shard %d (%s): %s; it will be regenerated", index, marker.file,
                    "; ".join(problems))
        store.delete(marker.path)
    return sorted(bad)
