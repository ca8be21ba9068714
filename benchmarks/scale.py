"""Plan, status and dispatch at scale: memory and time must grow with classes or shards, never
with samples, and never quadratically with manifest rows.

`python -m benchmarks.scale [ROWS]` prints one JSON line:
- plan_100m: a plan of 100,000,000 samples (10 classes), its summary and its pending-shard
  list (the dispatch queue): seconds and the peak of Python memory (tracemalloc);
- status_100m: `job_status` of that job with 2,000 committed markers on local disk;
- manifests: 1,000,000 classes and 1,000,000 prompts (resolve, job_id, summary), beside a
  tenth of each: `ratio` near 10 is linear, near 100 would be quadratic.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from typing import Any

from synthgen.output.catalog import Catalog
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from synthgen.storage.commit import CommitMarker
from synthgen.storage.layout import data_path
from synthgen.storage.store import Store


def measured(work: Any) -> dict[str, float]:
    tracemalloc.start()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": round(seconds, 3), "peak_mib": round(peak / 2**20, 1)}


def big_plan(out: str) -> Plan:
    spec = {"classes": {"names": [str(i) for i in range(10)], "count": 10_000_000},
            "output": {"uri": out, "shard_size": 500}}
    return Plan.build(validate_spec(spec))


def plan_100m() -> dict[str, Any]:
    def work() -> None:
        plan = big_plan("/tmp/unused")
        plan.summary()
        [i for i in range(plan.num_shards) if i not in {}]  # the driver's pending list
    return measured(work)


def status_100m(markers: int = 2000) -> dict[str, Any]:
    from synthgen.output.catalog import job_status
    from synthgen.output.job_record import JobRecord, ModelRecord, write_job_record

    with tempfile.TemporaryDirectory() as out:
        plan = big_plan(out)
        store = Store(out)
        write_job_record(store, JobRecord(plan.job_id, plan, ModelRecord(source="builtin:digits")))
        for i in range(markers):
            store.put_bytes(f"_commits/shard-{i:05d}.json", CommitMarker(
                shard=i, file=data_path(i, "00aaaaaaaaaa"), rows=500, bytes=1, sha256="0" * 64,
                first_sample_id=i * 500, last_sample_id=i * 500 + 499, attempt="00aaaaaaaaaa", attempt_no=0,
                job_id=plan.job_id, host="h", seconds=1.0, batch_size=64, committed_at=0.0).to_bytes())
        result = measured(lambda: job_status(Catalog.read(store)))
    return {**result, "committed_markers": markers}


def manifest(rows: int, kind: str) -> dict[str, float]:
    if kind == "classes":
        spec = {"classes": {"names": [f"class {i}" for i in range(rows)], "count": 100}}
    else:
        spec = {"prompts": {"items": [{"prompt": f"a photo {i}", "label": f"l{i % 1000}"}
                                      for i in range(rows)], "count": 2}}

    def work() -> None:
        plan = Plan.build(validate_spec(spec))
        plan.summary()
    return measured(work)


def manifests(rows: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kind in ("classes", "prompts"):
        small, large = manifest(rows // 10, kind), manifest(rows, kind)
        found[kind] = {"rows": rows, "tenth": small, "full": large,
                       "ratio": round(large["seconds"] / max(small["seconds"], 1e-9), 1)}
    return found


def main(rows: int = 1_000_000) -> dict[str, Any]:
    return {"plan_100m": plan_100m(), "status_100m": status_100m(), "manifests": manifests(rows)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)))
