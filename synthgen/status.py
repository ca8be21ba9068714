"""What an output holds: committed shards, failures, completeness; and a re-hash check."""

from __future__ import annotations

import hashlib
from typing import Any

from synthgen.dataset import read_parquet
from synthgen.errors import UserError
from synthgen.lock import current_holder
from synthgen.manifest import Manifest
from synthgen.plan import Plan
from synthgen.spec import validate_spec
from synthgen.storage import COMMITS_DIR, FAILED_DIR, JOB_FILE, SUCCESS_FILE, Store


def committed_markers(store: Store) -> dict[int, dict[str, Any]]:
    """Shard index -> its commit marker: the truth about which shards are done."""
    names = [n for n in store.list(COMMITS_DIR) if n.startswith("shard-") and n.endswith(".json")]
    found = store.read_many_json([f"{COMMITS_DIR}/{n}" for n in names])
    return {int(rel.rsplit("-", 1)[1].split(".")[0]): marker for rel, marker in found.items()}


def stored_plan(store: Store) -> Plan:
    if not store.exists(JOB_FILE):
        raise UserError("URI", store.uri, "holds no synthgen job (no job.json); check the path")
    record = store.read_json(JOB_FILE)
    spec = validate_spec(record["spec"])
    return Plan(spec=spec, manifest=Manifest.from_json(record["manifest"]))


def job_status(store: Store) -> dict[str, Any]:
    plan = stored_plan(store)
    markers = committed_markers(store)
    failed = {}
    for name in store.list(FAILED_DIR):
        index = int(name.rsplit("-", 1)[1].split(".")[0])
        if index not in markers:
            failed[index] = store.read_json(f"{FAILED_DIR}/{name}")
    planned = plan.per_class()
    committed = plan.per_class([plan.shard(i) for i in sorted(markers)])
    return {
        "job_id": plan.job_id,
        "uri": store.uri,
        "complete": len(markers) == plan.num_shards and store.exists(SUCCESS_FILE),
        "shards_total": plan.num_shards,
        "shards_committed": len(markers),
        "samples_total": plan.total,
        "samples_committed": sum(m["rows"] for m in markers.values()),
        "per_class": {name: {"planned": n, "committed": committed.get(name, 0)}
                      for name, n in planned.items()},
        "failed_shards": [{"shard": i, "error": f.get("error"), "attempts": f.get("attempts")}
                          for i, f in sorted(failed.items())],
        "driver": current_holder(store),  # the driver holding the job lock, if any
    }


def verify(store: Store) -> list[str]:
    """Re-read every committed shard; one problem per line, empty when all is well."""
    plan = stored_plan(store)
    markers = committed_markers(store)
    problems = [f"shard {i}: not committed" for i in range(plan.num_shards) if i not in markers]
    for index, marker in sorted(markers.items()):
        problems += [f"shard {index} ({marker.get('file')}): {p}"
                     for p in check_shard(store, plan, index, marker)]
    return problems


def check_shard(store: Store, plan: Plan, index: int, marker: dict[str, Any]) -> list[str]:
    """What is wrong with one committed shard's data file; empty when it matches its marker."""
    if marker.get("job_id") != plan.job_id:
        return [f"marker belongs to job {marker.get('job_id')}"]
    try:
        data = store.read_bytes(marker["file"])
    except FileNotFoundError:
        return ["data file missing"]
    problems = []
    if len(data) != marker["bytes"]:
        problems.append(f"size {len(data)} != {marker['bytes']} in the marker")
    if hashlib.sha256(data).hexdigest() != marker["sha256"]:
        problems.append("sha256 does not match the marker")
    if problems:
        return problems
    ids = read_parquet(data, ["sample_id"]).column("sample_id").to_pylist()
    shard = plan.shard(index)
    if len(ids) != marker["rows"] or ids != list(range(shard.start, shard.stop)):
        problems.append(f"rows {len(ids)} do not match the planned sample_ids "
                        f"{shard.start}..{shard.stop - 1}")
    return problems


