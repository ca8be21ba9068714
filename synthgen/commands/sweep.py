"""`synthgen sweep`: small pilot jobs over a grid of settings, on one shared pool of actors.

Each cell of the grid (spec/grid.py) is a real synthgen job of N images per class in
`URI/cells/<k>/`, with its own job.json, commit markers, index and card: committed and
resumable like any job. All cells run on one JobGroup (engine/job.py), so every actor loads the
model once for the whole sweep and takes the shards of any cell; with several workers, cells
run side by side. A killed sweep run again skips what is committed (cells complete, shards
with a marker). Every check is made, for every cell, before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

from synthgen.engine import ctrl_c
from synthgen.engine.captions import ensure_captions, wants_captions
from synthgen.engine.driver import Prepared, claim_output, commit_by_driver, prepare
from synthgen.engine.job import ActorStats, JobContext, JobGroup, ShardResult
from synthgen.engine.progress import Progress, run_log
from synthgen.errors import JobFailed, UserError
from synthgen.inputs.labeled_keys import job_manifest
from synthgen.output.catalog import Catalog, read_markers
from synthgen.output.finalize import finalize
from synthgen.spec.grid import MAX_CELLS, Axis, Cell, cell_spec, grid_cells, parse_axis
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.load import load_spec, set_dotted, validate_spec
from synthgen.spec.manifest import Manifest
from synthgen.spec.plan import Plan
from synthgen.storage.layout import SUCCESS_FILE
from synthgen.storage.lock import JobLock
from synthgen.storage.store import Store
from synthgen.storage.versioned import CorruptRecord, Record

log = logging.getLogger("synthgen.sweep")

SWEEP_FILE = "sweep.json"  # the grid (written first), then every figure of every cell
CELLS_DIR = "cells"


class SweepRecord(Record):
    """sweep.json: what identifies the sweep (`sweep`), then its `results` once scored.
    Version 1 is every layout written so far."""

    sweep: dict[str, Any]
    results: dict[str, Any] | None = None


def read_sweep(store: Store) -> SweepRecord:
    try:
        return SweepRecord.from_bytes(store.read_bytes(SWEEP_FILE), f"{store.uri}/{SWEEP_FILE}")
    except CorruptRecord as exc:
        raise UserError("--output", store.uri, f"its {SWEEP_FILE} is corrupt ({exc}); choose a new "
                        "output") from None


@dataclass(frozen=True)
class SweepRequest:
    """What the user asked for: the spec, its `--set` overrides, the grid and the pilots' size."""

    spec: str
    grid: tuple[str, ...]
    per_class: int
    overrides: tuple[str, ...] = ()
    output: str | None = None  # default: the spec's output.uri + "-sweep"
    max_cells: int = MAX_CELLS


@dataclass(frozen=True)
class SweepCell:
    cell: Cell
    prepared: Prepared  # the pilot job, checked
    full: Plan  # the whole job with this cell's settings (the spec's own counts)

    @property
    def uri(self) -> str:
        return self.prepared.plan.spec.output.uri


@dataclass(frozen=True)
class SweepPlan:
    uri: str
    store: Store
    base: dict[str, Any]  # the user's spec with --set, as data (--write-best starts from it)
    axes: list[Axis]
    per_class: int
    cells: list[SweepCell]

    def record(self) -> dict[str, Any]:
        """What identifies the sweep in sweep.json: a rerun must ask for the same grid."""
        return {"axes": [{"key": a.key, "values": list(a.values)} for a in self.axes],
                "per_class": self.per_class,
                "cells": [{"cell": c.cell.index, "settings": c.cell.settings, "uri": c.uri,
                           "job_id": c.prepared.plan.job_id} for c in self.cells]}


@dataclass
class SweepRun:
    """What one run of the sweep did: the actors it used and the shards it ran."""

    actors: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards_run: int = 0
    cells_run: list[int] = field(default_factory=list)
    pool: dict[str, Any] | None = None  # the pool it ran on (read while Ray was up)

    def actor_done(self, result: ShardResult) -> None:
        stats: ActorStats | None = result.actor
        if stats is None:
            return
        entry = self.actors.setdefault(stats.actor_id, {"actor": stats.actor_id, "shards": 0, "cells": []})
        entry.update(model_loads=stats.model_loads, load_s=stats.load_s)
        entry["shards"] += 1
        if int(result.job) not in entry["cells"]:
            entry["cells"].append(int(result.job))


def plan_sweep(request: SweepRequest) -> SweepPlan:
    """Validate the spec, the grid and every cell's job; writes nothing."""
    spec = load_spec(request.spec, request.overrides)
    base = spec.model_dump(mode="json")
    uri = (request.output or f"{spec.output.uri.rstrip('/')}-sweep").rstrip("/")
    if "://" not in uri:  # the actors run elsewhere: a local path is made absolute here
        uri = os.path.abspath(os.path.expanduser(uri))
    axes = [parse_axis(item) for item in request.grid]
    cells = []
    for cell in grid_cells(axes, request.max_cells):
        full = cell_spec(base, cell)
        pilot, manifest = pilot_job(full, request.per_class, f"{uri}/{CELLS_DIR}/{cell.index}")
        cells.append(SweepCell(cell, prepare(pilot, manifest), Plan.build(full, job_manifest(full))))
    store = Store(uri, spec.output.storage_options)
    plan = SweepPlan(uri, store, base, axes, request.per_class, cells)
    _check_output(plan)
    return plan


def pilot_job(full: JobSpec, per_class: int, uri: str) -> tuple[JobSpec, Manifest]:
    """The cell's pilot: the same job with N images of each class (or prompt), at `uri`; an init
    job's pilot varies the first images of each class."""
    data = full.model_dump(mode="json")
    set_dotted(data, "prompts.count" if full.prompts else "classes.count", per_class)
    set_dotted(data, "output.uri", uri)
    spec = validate_spec(data)
    manifest = job_manifest(spec)
    return spec, replace(manifest, entries=tuple(replace(e, count=per_class) for e in manifest.entries))


def _check_output(plan: SweepPlan) -> None:
    """An output holds this sweep, or nothing at all: never another sweep, never a user's files."""
    store = plan.store
    if store.exists(SWEEP_FILE):
        held = read_sweep(store).sweep
        if held != plan.record():
            raise UserError("--output", plan.uri, "holds another sweep (another grid, --per-class or "
                                                  "spec); choose a new output")
    elif store.list(""):
        raise UserError("--output", plan.uri, "is not empty and holds no synthgen sweep; choose a "
                                              "new or empty output")


def run_sweep(plan: SweepPlan, address: str | None = None) -> SweepRun:
    """Run every cell's uncommitted shards on one pool, then finish each cell's job."""
    if not plan.store.exists(SWEEP_FILE):
        plan.store.put_json(SWEEP_FILE, SweepRecord(sweep=plan.record()).to_json())
    run = SweepRun()
    with run_log(plan.store, "sweep"), contextlib.ExitStack() as locks:
        held = {c.cell.index: locks.enter_context(JobLock.acquire(c.prepared.store)) for c in plan.cells}
        todo = _pending(plan)
        started = _execute(plan, todo, run, (held, address)) if todo else False
        with _stopping(started):
            for cell in plan.cells:
                if not cell.prepared.store.exists(SUCCESS_FILE):
                    held[cell.cell.index].check()
                    finalize(Catalog.read(cell.prepared.store))
        for actor in run.actors.values():
            log.info("actor %s: model loaded %d time(s) in %.1f s for %d shard(s) of %d cell(s)",
                     actor["actor"][:12], actor["model_loads"], actor["load_s"], actor["shards"],
                     len(actor["cells"]))
    return run


def _pending(plan: SweepPlan) -> dict[int, list[int]]:
    """Cell -> its shards without a commit marker (job.json claimed for every cell first)."""
    todo: dict[int, list[int]] = {}
    for cell in plan.cells:
        cell.prepared.store.probe_create_only()  # stores without create-only: the driver commits
        claim_output(cell.prepared)
        if cell.prepared.store.exists(SUCCESS_FILE):
            continue
        markers = read_markers(cell.prepared.store)
        shards = [i for i in range(cell.prepared.plan.num_shards) if i not in markers]
        log.info("cell %d (%s): %d shards, %d committed, %d to run", cell.cell.index, cell.cell.label(),
                 cell.prepared.plan.num_shards, len(markers), len(shards))
        if shards:
            todo[cell.cell.index] = shards
    return todo


def _execute(plan: SweepPlan, todo: dict[int, list[int]], run: SweepRun,
             where: tuple[dict[int, JobLock], str | None]) -> bool:
    """Run the pending shards; True when this started an embedded Ray (to stop once done)."""
    # ray only once there is something to run: planning a sweep never pays for it
    from synthgen.engine.executor import Events, Executor
    from synthgen.engine.pool import connect_ray

    held, address = where
    cells = {c.cell.index: c for c in plan.cells}
    jobs = {str(k): _cell_job(cells[k].prepared, held[k], address) for k in todo}
    total = sum(cells[k].prepared.plan.total for k in todo)
    done = total - sum(cells[k].prepared.plan.shard(i).size for k, shards in todo.items() for i in shards)
    shards = sum(cells[k].prepared.plan.num_shards for k in todo)
    started = connect_ray(address)
    run.pool = cluster_pool(plan)
    with Progress(total=total, done=done, shards_total=shards,
                  shards_done=shards - sum(map(len, todo.values()))) as progress:

        def on_done(result: ShardResult) -> None:
            progress.shard_done(result)
            run.actor_done(result)
            run.shards_run += 1
            log.info("cell %s: shard %d committed", result.job, result.shard)

        events = Events(on_progress=progress.in_flight, on_done=on_done, on_retry=progress.retried,
                        on_failed=lambda address, error, attempts: progress.failed(address),
                        commit=lambda r: commit_by_driver(cells[int(r.job)].prepared.store, r,
                                                          held[int(r.job)].token),
                        fenced=ctrl_c.pressed)
        addresses = [(str(k), i) for k, shards in todo.items() for i in shards]
        failed = Executor(JobGroup(jobs), events).run(addresses).failed
    run.cells_run = sorted(todo)
    if failed:
        lines = "; ".join(f"cell {k} shard {i}: {e}" for (k, i), e in sorted(failed.items()))
        with _stopping(started):
            raise JobFailed(f"{len(failed)} shard(s) failed: {lines}. Run the same `synthgen sweep` "
                            "again to retry them.")
    return started


def _stopping(started: bool) -> contextlib.AbstractContextManager[None]:
    """Shut down the embedded Ray this sweep started, while the cells are finished."""
    if not started:
        return contextlib.nullcontext()
    from synthgen.engine.pool import stopping_ray  # ray: only once this sweep started one

    return stopping_ray(True)


def _cell_job(prepared: Prepared, lock: JobLock, address: str | None) -> JobContext:
    """The cell's job as `synthgen run` hands it to its actors: captions (made once, as a first
    phase), the lock's fence and the pinned model revision."""
    from synthgen.engine.pool import connect_ray  # ray: the caption phase may need it

    captions = (ensure_captions(prepared.job, prepared.store, lambda: connect_ray(address))
                if wants_captions(prepared.plan) else None)
    return replace(prepared.job, driver_commits=not prepared.store.conditional, captions=captions,
                   lock_token=lock.token,
                   model_revision=prepared.info.revision if prepared.info else None)


def cluster_pool(plan: SweepPlan) -> dict[str, Any]:
    """The pool the sweep ran on (or would run on here): the hardware the figures are for."""
    # ray: the pool's shape needs the cluster's resources, read once Ray is up
    import ray

    from synthgen.engine.pool import pool_plan  # it imports ray too

    cluster = ray.cluster_resources() if ray.is_initialized() else {"CPU": float(os.cpu_count() or 1)}
    pool = pool_plan(plan.cells[0].prepared.job, cluster)
    return {"workers": pool.workers, "cpus_per_worker": pool.cpus, "gpus_per_worker": pool.gpus,
            "device": "gpu" if pool.gpus else "cpu"}
