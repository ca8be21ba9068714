"""A sweep's results: every cell scored, the full job's cost, the ranking, sweep.json and sweep.png,
and `--write-best` (the user's whole spec with the best cell's settings).

The full job's cost: the cell's per-worker speed and load time (its own model's: a cell is one
model), projected onto the whole job (the spec's own counts, with the cell's settings) the way
`synthgen plan --calibrate` projects one (shards to the first free actor, each actor loading its
model first: commands/estimate.py), on the sweep's pool and on other worker counts. Device-hours
are workers x GPUs (CPUs without GPUs) per worker x wall time. It assumes each added worker runs
at the measured speed (its own GPU or cores).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from synthgen.commands.estimate import project
from synthgen.commands.sweep import (
    SWEEP_FILE,
    SweepCell,
    SweepPlan,
    SweepRecord,
    SweepRun,
    cluster_pool,
    read_sweep,
)
from synthgen.errors import UserError
from synthgen.quality.evaluation import EvalConfig
from synthgen.quality.size_curve import size_curve
from synthgen.quality.sweep_scores import metrics, ranked, score_cell, sweep_figure
from synthgen.spec.load import set_dotted
from synthgen.spec.plan import Plan

PLOT_FILE = "sweep.png"
BEST_HEADER = "# written by `synthgen sweep --write-best`"


def sweep_results(plan: SweepPlan, run: SweepRun, scoring: dict[str, Any]) -> dict[str, Any]:
    """Score every cell, rank them, store sweep.json and sweep.png; the whole result as data.
    `scoring`: real (the source), real_sets (its RealSets, loaded once for every cell), rank,
    workers (the worker counts to estimate the full job on), sizes (fractions: the best cell's
    CAS curve, as `synthgen eval --sizes`)."""
    previous = (read_sweep(plan.store).results or {}) if not run.actors else {}
    pool = run.pool or previous.get("pool") or cluster_pool(plan)  # nothing ran: what ran it
    per_model = model_load_s(run) if run.actors else previous.get("model_load_s_per_model", {})
    load_s = max(per_model.values(), default=previous.get("model_load_s", 0.0))
    options = plan.store.storage_options
    cells = []
    for cell in plan.cells:
        scores = score_cell(cell.uri, scoring.get("real_sets"), options)
        model_s = per_model.get(cell.model, load_s)
        scores["full_job"] = full_job_cost(cell.full, scores["speed"]["images_per_s"], model_s, pool,
                                           scoring.get("workers", ()))
        cells.append({"cell": cell.cell.index, "settings": cell.cell.settings, "model": cell.model,
                      "uri": cell.uri, "job_id": cell.prepared.plan.job_id, **scores,
                      "metrics": metrics(scores)})
    order = ranked(cells, scoring["rank"])
    best = next(c for c in plan.cells if c.cell.index == order[0]["cell"])
    config = EvalConfig(best.uri, scoring["real"], storage_options=options)
    sizes = scoring.get("sizes")
    curve = size_curve(config, sizes, real=scoring.get("real_sets")) if sizes else None
    results = {"output": plan.uri, "rank": scoring["rank"], "real": scoring["real"],
               "per_class": plan.per_class,
               "axes": [{"key": a.key, "values": list(a.values)} for a in plan.axes],
               "pool": pool, "model_load_s": load_s, "model_load_s_per_model": per_model,
               "actors": list(run.actors.values()),
               "shards_run": run.shards_run,
               "cells_run": run.cells_run, "best": order[0]["cell"], "order": [c["cell"] for c in order],
               "best_curve": curve, "cells": cells}
    plan.store.put_json(SWEEP_FILE, SweepRecord(sweep=plan.record(), results=results).to_json())
    plan.store.put_bytes(PLOT_FILE, sweep_figure(results))
    return results


def model_load_s(run: SweepRun) -> dict[str, float]:
    """Each model's load time: the longest one load of it took on any actor (each actor of the
    full job loads its model once, first)."""
    out: dict[str, float] = {}
    for actor in run.actors.values():
        for model, done in actor["loads"].items():
            out[model] = max(out.get(model, 0.0), round(done["load_s"] / max(1, done["loads"]), 3))
    return out


def full_job_cost(full: Plan, images_per_s: float | None, load_s: float, pool: dict[str, Any],
                  workers: tuple[int, ...]) -> dict[str, Any]:
    """Wall time and device-hours of the whole job on the sweep's pool and on `workers` workers."""
    out: dict[str, Any] = {"samples": full.total, "shards": full.num_shards, "device": pool["device"],
                           "estimates": []}
    if not images_per_s:
        return out
    batch_s = full.spec.compute.batch_size / images_per_s
    per_worker = pool["gpus_per_worker"] or pool["cpus_per_worker"]
    for count in sorted({pool["workers"], *workers}):
        wall = project(full, count, load_s, batch_s)
        out["estimates"].append({"workers": count, "wall_s": round(wall, 1),
                                 "device_hours": round(count * per_worker * wall / 3600, 4)})
    return out


def check_best_path(path: str) -> None:
    """A file there is replaced only when an earlier --write-best wrote it: a user's is never."""
    target = Path(path)
    if target.is_dir() or target.exists() and not target.read_text(errors="replace").startswith(BEST_HEADER):
        raise UserError("--write-best", path, "exists and was not written by synthgen sweep; "
                                              "choose a new file")


def write_best(plan: SweepPlan, results: dict[str, Any], path: str) -> Path:
    """The user's whole spec with the best cell's settings, as YAML ready for `synthgen run`."""
    check_best_path(path)
    target = Path(path)
    best: SweepCell = next(c for c in plan.cells if c.cell.index == results["best"])
    data = copy.deepcopy(plan.base)
    for key, value in best.cell.settings.items():
        set_dotted(data, key, value)
    header = (f"{BEST_HEADER}: cell {best.cell.index} ({best.cell.label()}) of the sweep in "
              f"{plan.uri}, best by {results['rank']}\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header + yaml.safe_dump(_drop_nulls(data), sort_keys=False))
    return target


def _drop_nulls(data: Any) -> Any:
    """A spec without its unset (null) fields: what a user would have written."""
    if isinstance(data, dict):
        return {k: _drop_nulls(v) for k, v in data.items() if v is not None}
    return data
