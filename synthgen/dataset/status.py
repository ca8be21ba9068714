"""What an output holds: committed shards and samples per class, failures, completeness."""

from __future__ import annotations

from typing import Any

from synthgen.dataset.catalog import Catalog, read_failures
from synthgen.storage.layout import SUCCESS_FILE
from synthgen.storage.lock import current_holder, holder_state


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
        "failed_shards": [{"shard": i, "error": f.get("error"), "attempts": f.get("attempts")}
                          for i, f in sorted(failed.items())],
        "driver": driver,  # the driver holding the job lock, if any
        "driver_state": holder_state(driver) if driver else None,  # alive, dead or silent
    }
