"""`synthgen sweep`: small pilot jobs over a grid of settings, on one shared pool of actors.

Each cell of the grid (spec/grid.py) is a real synthgen job of N images per class in
`URI/cells/<k>/`, with its own job.json, commit markers, index and card: committed and
resumable like any job, opened and finished by its own JobOutput (engine/lifecycle.py). All cells
run on one JobGroup (engine/job.py): every actor loads each model once for the whole sweep
(a grid over `model.source` compares generators: the executor hands an actor the cells of the
model it holds before it loads the next) and takes the shards of any cell; with several
workers, cells run side by side. A killed sweep run
again skips what is committed (cells complete, shards with a marker). Every check is made, for
every cell, before anything is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

from synthgen.engine.driver import prepare, run_outputs, stopping
from synthgen.engine.job import ActorStats, CheckedJob, ShardResult, model_key, model_label
from synthgen.engine.lifecycle import JobOutput, RunOptions, holds_job
from synthgen.engine.progress import run_log
from synthgen.errors import JobFailed, UserError
from synthgen.inputs.labeled_keys import job_manifest
from synthgen.spec.grid import Axis, Cell, cell_spec, grid_cells, in_cell, parse_axis
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.limits import MAX_CELLS
from synthgen.spec.load import load_spec, set_dotted, validate_spec
from synthgen.spec.manifest import Manifest
from synthgen.spec.plan import Plan
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
    prepared: CheckedJob  # the pilot job, checked
    full: Plan  # the whole job with this cell's settings (the spec's own counts)

    @property
    def uri(self) -> str:
        return self.prepared.plan.spec.output.uri

    @property
    def model(self) -> str:
        """The cell's generator as the actors name it (source, revision, dtype)."""
        info = self.prepared.info
        return model_label(model_key(self.prepared.plan.spec.model, info.revision if info else None))


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

    def shard_done(self, result: ShardResult) -> None:
        self.shards_run += 1
        log.info("cell %s: shard %d committed", result.job, result.shard)
        stats: ActorStats | None = result.actor
        if stats is None:
            return
        entry = self.actors.setdefault(stats.actor_id, {"actor": stats.actor_id, "shards": 0, "cells": []})
        entry.update(model_loads=stats.model_loads, load_s=stats.load_s, loads=dict(stats.loads or {}))
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
        with in_cell(cell):  # e.g. a generator that does not know the spec's classes
            pilot, manifest = pilot_job(full, request.per_class, f"{uri}/{CELLS_DIR}/{cell.index}")
            cells.append(SweepCell(cell, prepare(pilot, manifest), Plan.build(full, job_manifest(full))))
    store = Store(uri, spec.output.storage_options)
    plan = SweepPlan(uri, store, base, axes, request.per_class, cells)
    _check_output(plan)
    for checked in cells:  # a cell run before is resumed: its model must be the one job.json pins
        with in_cell(checked.cell):
            holds_job(checked.prepared)
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
    run, options = SweepRun(), RunOptions(address=address)
    with run_log(plan.store, "sweep"), contextlib.ExitStack() as held:
        outputs = [held.enter_context(JobOutput.open(c.prepared, options, key=str(c.cell.index)))
                   for c in plan.cells]
        for cell, output in zip(plan.cells, outputs, strict=True):
            if not output.complete:
                shards = cell.prepared.plan.num_shards
                log.info("cell %d (%s): %d shards, %d committed, %d to run", cell.cell.index,
                         cell.cell.label(), shards, shards - len(output.pending), len(output.pending))
        failed, started = run_outputs(outputs, options, on_done=run.shard_done)
        run.cells_run = sorted(int(o.key) for o in outputs if o.pending)
        if run.cells_run:
            run.pool = cluster_pool(plan)  # read while Ray is up
        with stopping(started):
            if failed:
                lines = "; ".join(f"cell {a.job} shard {a.index}: {e}" for a, e in sorted(failed.items()))
                raise JobFailed(f"{len(failed)} shard(s) failed: {lines}. Run the same `synthgen sweep` "
                                "again to retry them.")
            for output in outputs:
                if not output.complete:
                    output.finish()
        for actor in run.actors.values():
            models = ", ".join(f"{model} {n['loads']}x in {n['load_s']:.1f} s"
                               for model, n in actor["loads"].items())
            log.info("actor %s: model loaded %d time(s) in %.1f s for %d shard(s) of %d cell(s) (%s)",
                     actor["actor"][:12], actor["model_loads"], actor["load_s"], actor["shards"],
                     len(actor["cells"]), models)
    return run


def cluster_pool(plan: SweepPlan) -> dict[str, Any]:
    """The pool the sweep ran on (or would run on here): the hardware the figures are for."""
    # ray: the pool's shape needs the cluster's resources, read once Ray is up
    import ray

    from synthgen.engine.pool import pool_plan  # it imports ray too

    cluster = ray.cluster_resources() if ray.is_initialized() else {"CPU": float(os.cpu_count() or 1)}
    pool = pool_plan(plan.cells[0].prepared.job, cluster)
    return {"workers": pool.workers, "cpus_per_worker": pool.cpus, "gpus_per_worker": pool.gpus,
            "device": "gpu" if pool.gpus else "cpu"}
