"""`synthgen resume --repair`: un-commit shards whose data is missing or corrupt, so the run
regenerates them (each sample's seed is fixed, so the new shard holds the same samples).

Runs under the job lock. _SUCCESS goes first, so a crash half-way leaves an incomplete job that
a later `resume` finishes; the bad data files become orphans, removed when the job finishes.
"""

from __future__ import annotations

import logging

from synthgen.dataset.catalog import Catalog
from synthgen.dataset.verify import check_shard
from synthgen.storage.layout import SUCCESS_FILE

log = logging.getLogger("synthgen")


def repair(catalog: Catalog) -> list[int]:
    """The shards un-committed because their data did not match their marker."""
    store = catalog.store
    bad = {}
    for marker in catalog.shards:
        problems = check_shard(store, catalog.plan, marker)
        if problems:
            bad[marker.shard] = (marker, problems)
    if not bad:
        log.info("repair: every committed shard matches its marker")
        return []
    store.delete(SUCCESS_FILE)
    for index, (marker, problems) in bad.items():
        log.warning("repair: shard %d (%s): %s; it will be regenerated", index, marker.file,
                    "; ".join(problems))
        store.delete(marker.path)
    return sorted(bad)
