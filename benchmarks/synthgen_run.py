"""(b) `synthgen run` end to end, as a user runs it: a whole process on an embedded local Ray.

The commit markers say when each shard's generation started and ended, which splits the wall
time into start-up (process start to the first shard), generation, and the tail (finalize, Ray
shutdown, exit).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from benchmarks.config import BenchConfig
from benchmarks.procs import Timed, env_without_ray_address, run_timed

CLASS_NAMES = ["cat", "dog", "ship", "car", "bird", "frog", "deer", "horse", "plane", "truck"]


def job_spec(cfg: BenchConfig, out: Path, dtype: str = "float32", **compute: Any) -> dict[str, Any]:
    """The job a new user writes for the acceptance model. torch gets `cfg.threads` threads
    (`compute.cpus_per_worker`; with one worker that is what `auto` gives on this machine)."""
    return {
        "name": "benchmark",
        "seed": cfg.seed,
        "model": {"source": cfg.model, "dtype": dtype},
        "sampler": {"scheduler": "ddim", "steps": cfg.steps, "guidance_scale": 1.0},
        "classes": {"count": cfg.per_class, "names": class_names(cfg.classes)},
        # by_class: the bare loop (benchmarks/bare.py, no synthgen import) walks the samples in
        # that layout; the order changes which seed lands in which batch, not the work.
        "output": {"uri": str(out), "image_format": "png", "shard_size": cfg.shard_size,
                   "order": "by_class"},
        "compute": {"workers": 1, "batch_size": cfg.batch_size, "cpus_per_worker": cfg.threads,
                    **compute},
    }


def class_names(n: int) -> list[str]:
    return [CLASS_NAMES[i] if i < len(CLASS_NAMES) else f"class{i}" for i in range(n)]


def synthgen_command() -> list[str]:
    """The console script a user types; `python -m synthgen.cli` where it is not on PATH."""
    script = shutil.which("synthgen")
    return [script] if script else [sys.executable, "-m", "synthgen.cli"]


def run_synthgen(cfg: BenchConfig, workdir: Path, watch_every_s: float | None = None,
                 address: str | None = None, dtype: str = "float32",
                 **compute: Any) -> tuple[Timed, dict[str, float]]:
    """Run the job in a fresh output under `workdir`; the timing and its phases.

    Without `address` (the benchmark) the run starts its own embedded Ray, as a user's does.
    """
    out = workdir / "out"
    shutil.rmtree(out, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir / "spec.yaml"
    spec.write_text(yaml.safe_dump(job_spec(cfg, out, dtype, **compute)))
    env = env_without_ray_address({"RAY_ADDRESS": address} if address else None)
    timed = run_timed([*synthgen_command(), "run", str(spec)], env=env, watch_every_s=watch_every_s)
    if timed.returncode != 0:
        raise RuntimeError(f"synthgen run failed ({timed.returncode}): {timed.stderr[-3000:]}")
    return timed, phases(timed, out)


def phases(timed: Timed, out: Path) -> dict[str, float]:
    """Start-up, generation and tail from the markers' timestamps (actor clocks: same machine)."""
    markers = [json.loads(p.read_text()) for p in sorted((out / "_commits").glob("shard-*.json"))]
    starts = [m["committed_at"] - m["seconds"] for m in markers]
    first, last = min(starts), max(m["committed_at"] for m in markers)
    return {
        "startup_s": first - timed.started_at,
        "generation_s": last - first,
        "shard_s": sum(m["seconds"] for m in markers),
        "tail_s": timed.started_at + timed.wall_s - last,
        "images": sum(m["rows"] for m in markers),
    }
