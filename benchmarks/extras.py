"""Scaling and memory: 1 vs 2 workers, peak RSS per process, the driver's memory on a job of
1,000,000 samples (plan and status, no model loaded), and the driver's dispatch rate."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from benchmarks.config import BenchConfig
from benchmarks.procs import Timed, run_python, run_timed
from benchmarks.synthgen_run import class_names, job_spec, run_synthgen, synthgen_command

MILLION = 1_000_000
DISPATCH_WORKERS = (1, 4, 8)


def run_extras(cfg: BenchConfig, workdir: Path) -> dict[str, Any]:
    results = {"workers": scaling(cfg, workdir), "driver_memory": driver_memory(cfg, workdir),
               "dispatch": dispatch(workdir / "config.json")}
    print(extras_table(results), flush=True)
    return results


def scaling(cfg: BenchConfig, workdir: Path) -> list[dict[str, Any]]:
    """The same job on one worker and on two (`cpus_per_worker: auto`: all cores, or a share
    each; torch threads follow), memory and CPU time of every process watched."""
    rows = []
    for workers in (1, 2):
        timed, phase = run_synthgen(cfg, workdir / f"workers-{workers}", watch_every_s=1.0,
                                    workers=workers, cpus_per_worker="auto")
        rows.append({"workers": workers, "wall_s": timed.wall_s, "rate": phase["images"] / timed.wall_s,
                     "generation_rate": phase["images"] / phase["generation_s"], **phase,
                     "processes": process_summary(timed)})
    return rows


def process_summary(timed: Timed) -> dict[str, Any]:
    """Peak RSS of the driver and of each worker; CPU seconds by kind of process."""
    root = timed.pid
    workers = [p for p in timed.procs.values() if p.name == "ray::WorkerActor"]
    cpu: dict[str, float] = defaultdict(float)
    for pid, proc in timed.procs.items():
        cpu["driver" if pid == root else proc.name] += proc.cpu_s
    return {"driver_peak_mb": timed.procs[root].peak_mb,
            "worker_peak_mb": [w.peak_mb for w in workers],
            "ray_peak_mb_sum": sum(p.peak_mb for pid, p in timed.procs.items()
                                   if pid != root and p not in workers),
            "cpu_s": dict(sorted(cpu.items(), key=lambda kv: -kv[1]))}


def driver_memory(cfg: BenchConfig, workdir: Path) -> list[dict[str, Any]]:
    """Peak RSS of `synthgen plan` and `synthgen status`, for this job and a million samples."""
    rows = []
    for total in (cfg.total, MILLION):
        base = workdir / f"driver-{total}"
        base.mkdir(parents=True, exist_ok=True)
        spec = write_job(cfg, base, total)
        plan = run_timed([*synthgen_command(), "plan", str(spec), "--json"], watch_every_s=0.02)
        planned = json.loads(plan.stdout) if plan.returncode == 0 else {}
        claim_with_markers(spec, shards=5)
        status = run_timed([*synthgen_command(), "status", str(base / "out"), "--json"],
                           watch_every_s=0.02)
        if plan.returncode or status.returncode:
            raise RuntimeError(f"plan/status failed: {plan.stderr[-2000:]} {status.stderr[-2000:]}")
        state = json.loads(status.stdout)
        rows.append({"samples": planned["samples"], "shards": planned["shards"],
                     "status_committed": state["samples_committed"],
                     "plan_peak_mb": plan.procs[plan.pid].peak_mb, "plan_s": plan.wall_s,
                     "status_peak_mb": status.procs[status.pid].peak_mb, "status_s": status.wall_s})
    return rows


def write_job(cfg: BenchConfig, base: Path, total: int) -> Path:
    """The benchmark's job with `total` samples split over its classes."""
    spec = job_spec(cfg, base / "out")
    counts = [total // cfg.classes + (i < total % cfg.classes) for i in range(cfg.classes)]
    spec["classes"] = {"entries": [{"name": n, "count": c}
                                   for n, c in zip(class_names(cfg.classes), counts, strict=True)]}
    path = base / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def claim_with_markers(spec_path: Path, shards: int) -> None:
    """An output as a running job leaves it: job.json and the first few commit markers."""
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.spec.load import load_spec
    from synthgen.storage.commit import CommitMarker
    from synthgen.storage.layout import attempt_id, data_path

    prepared = prepare(load_spec(spec_path))
    claim_output(prepared)
    for index in range(min(shards, prepared.plan.num_shards)):
        shard = prepared.plan.shard(index)
        attempt = attempt_id(0)  # a name as synthgen writes it: readers refuse any other
        marker = CommitMarker(shard=index, file=data_path(index, attempt), rows=shard.size,
                              bytes=0, sha256="", first_sample_id=shard.start, last_sample_id=shard.stop - 1,
                              attempt=attempt, attempt_no=0, job_id=prepared.plan.job_id, host="bench",
                              seconds=0.0, batch_size=1, committed_at=0.0)
        prepared.store.create_only(marker.path, marker.to_bytes())


def dispatch(cfg_file: Path, shards: int = 2000) -> list[dict[str, float]]:
    rows = []
    for workers in DISPATCH_WORKERS:
        timed = run_python("benchmarks.dispatch", str(cfg_file), str(workers), str(shards))
        rows.append(timed.report())
    return rows


def extras_table(results: dict[str, Any]) -> str:
    lines = ["", f"{'workers':>7} {'wall s':>8} {'images/s':>9} {'gen. images/s':>14} "
             f"{'start-up s':>10} {'driver MiB':>10} {'worker MiB':>12}"]
    for r in results["workers"]:
        p = r["processes"]
        workers = "/".join(f"{m:.0f}" for m in p["worker_peak_mb"])
        lines.append(f"{r['workers']:>7} {r['wall_s']:8.1f} {r['rate']:9.1f} {r['generation_rate']:14.1f} "
                     f"{r['startup_s']:10.1f} {p['driver_peak_mb']:10.0f} {workers:>12}")
    lines += ["", f"{'samples':>9} {'shards':>7} {'plan MiB':>9} {'plan s':>7} {'status MiB':>10} "
              f"{'status s':>8}"]
    for r in results["driver_memory"]:
        lines.append(f"{r['samples']:>9} {r['shards']:>7} {r['plan_peak_mb']:9.0f} {r['plan_s']:7.1f} "
                     f"{r['status_peak_mb']:10.0f} {r['status_s']:8.1f}")
    lines += ["", "driver dispatch rate (no-op shards): " + ", ".join(
        f"{r['workers']} workers {r['shards_per_s']:.0f} shards/s" for r in results["dispatch"])]
    return "\n".join(lines)


if __name__ == "__main__":
    config = BenchConfig.load(sys.argv[1])
    print(json.dumps(run_extras(config, Path(sys.argv[1]).parent), indent=2))
