"""Re-reading committed shards: does each data file match its commit marker?"""

from __future__ import annotations

import hashlib
import logging

from synthgen.output.catalog import Catalog, read_success
from synthgen.output.formats import format_of
from synthgen.spec.plan import Plan
from synthgen.storage.commit import CommitMarker
from synthgen.storage.layout import DATA_DIR, SUCCESS_FILE, data_shard, own_temp
from synthgen.storage.records import Problem, read_failure_records
from synthgen.storage.store import Store
from synthgen.storage.versioned import CorruptRecord


def verify(store: Store) -> list[str]:
    """Re-read every committed shard; one problem per line, empty when all is well. A shard not
    yet committed is a problem only once the job says it is complete (`_SUCCESS`)."""
    catalog = Catalog.read(store)
    plan = catalog.plan
    problems = success_problems(catalog)
    for marker in catalog.shards:
        problems += [f"shard {marker.shard} ({marker.file}): {p}" for p in check_shard(store, plan, marker)]
    return problems + [str(p) for p in state_problems(catalog)]


def success_problems(catalog: Catalog) -> list[str]:
    """`_SUCCESS` must be readable, of this job, and may claim only a job whose shards are all
    committed; a newer synthgen's `_SUCCESS` is refused (UserError)."""
    problems = []
    try:
        success = read_success(catalog.store)
    except CorruptRecord as exc:  # still there, so still claiming the job complete
        problems.append(f"{SUCCESS_FILE}: corrupt: {exc}")
    else:
        if success is None:
            return []
        if success.job_id != catalog.plan.job_id:
            return [f"{SUCCESS_FILE}: names job {success.job_id}"]
    return problems + [f"shard {i}: not committed, though {SUCCESS_FILE} says the job is complete"
                       for i in catalog.missing]


def state_problems(catalog: Catalog) -> list[Problem]:
    """Stray, partial or corrupt files under _commits/, _failed/ and data/, each named.

    Under data/, a file synthgen did not name is foreign (reported, never removed); one of its
    own that no marker names is an orphan, reported once the job claims to be complete.
    """
    store = catalog.store
    problems = [*catalog.problems, *read_failure_records(store).problems]
    named = {m.file for m in catalog.shards}
    complete = store.exists(SUCCESS_FILE)
    for name in store.list(DATA_DIR):
        rel = f"{DATA_DIR}/{name}"
        if own_temp(name, DATA_DIR):
            continue  # a killed writer's partial file: its own, removed when the job finishes
        if data_shard(name) is None:
            problems.append(Problem(rel, "not a file synthgen writes here", ours=False))
        elif rel not in named and complete:
            problems.append(Problem(rel, "an orphan (no marker names it)", ours=True))
    return problems


def pending_shards(catalog: Catalog) -> list[int]:
    """Shards of a job still running or not finished (no `_SUCCESS`) that are not committed yet."""
    if catalog.store.exists(SUCCESS_FILE):
        return []
    return [i for i in range(catalog.plan.num_shards) if i not in catalog.markers]


def check_shard(store: Store, plan: Plan, marker: CommitMarker) -> list[str]:
    """What is wrong with one committed shard's data file; empty when it matches its marker."""
    if marker.job_id != plan.job_id:
        return [f"marker belongs to job {marker.job_id}"]
    try:
        data = store.read_bytes(marker.file)
    except FileNotFoundError:
        return ["data file missing"]
    problems = []
    if len(data) != marker.bytes:
        problems.append(f"size {len(data)} != {marker.bytes} in the marker")
    if hashlib.sha256(data).hexdigest() != marker.sha256:
        problems.append("sha256 does not match the marker")
    if problems:
        return problems
    ids = format_of(marker.file).read_table(data, ["sample_id"]).column("sample_id").to_pylist()
    shard = plan.shard(marker.shard)
    if len(ids) != marker.rows or ids != list(range(shard.start, shard.stop)):
        problems.append(f"rows {len(ids)} do not match the planned sample_ids "
                        f"{shard.start}..{shard.stop - 1}")
    return problems


# `synthgen resume --repair`: un-commit shards whose data is missing or corrupt, so the run
# regenerates them (each sample's seed is fixed, so the new shard holds the same samples).
#
# Runs under the job lock. _SUCCESS goes first, so a crash half-way leaves an incomplete job that
# a later `resume` finishes; the bad data files become orphans, removed when the job finishes.
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
