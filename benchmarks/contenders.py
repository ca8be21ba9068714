"""The four contenders, each run as a whole process and reduced to one comparable row."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from benchmarks.config import BenchConfig
from benchmarks.procs import Timed, env_without_ray_address, run_python
from benchmarks.synthgen_run import run_synthgen

# synthgen.models.runtime.SETTINGS as glibc's environment variables (a test checks they agree)
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20),
                "MALLOC_TOP_PAD_": str(64 << 20)}


@dataclass(frozen=True)
class Row:
    """One contender's figures. `work_s`: its generation (the loop, the shards); the rest of the
    wall time is fixed cost (imports, model load, Ray start-up, shutdown)."""

    key: str
    name: str
    images: int
    wall_s: float
    work_s: float
    load: float  # the 1-minute load average when it finished
    detail: str = ""  # where the fixed cost went

    @property
    def rate(self) -> float:
        return self.images / self.wall_s

    @property
    def fixed_s(self) -> float:
        return self.wall_s - self.work_s


def bare(cfg: Path, workdir: Path) -> Row:
    timed = run_python("benchmarks.bare", str(cfg))
    report = timed.report()
    return _row("a", "bare reverse loop (ceiling)", timed, report["images"], report["loop_s"],
                _split(report, "import_s", "load_s"))


def bare_tuned(cfg: Path, workdir: Path) -> Row:
    """(a) with glibc's allocator set as synthgen's CPU workers set it (models/runtime.py),
    through the environment: the ceiling (b) is held to."""
    timed = run_python("benchmarks.bare", str(cfg), env=env_without_ray_address(TUNED_MALLOC))
    report = timed.report()
    return _row("at", "bare reverse loop, tuned allocator", timed, report["images"],
                report["loop_s"], _split(report, "import_s", "load_s"))


def synthgen(cfg: Path, workdir: Path, dtype: str = "float32") -> Row:
    timed, phase = run_synthgen(BenchConfig.load(cfg), workdir / f"synthgen-{dtype}", dtype=dtype)
    between = phase["generation_s"] - phase["shard_s"]
    detail = (f"start-up {phase['startup_s']:.1f} s (process start to first shard), shards "
              f"{phase['shard_s']:.1f} s, between shards {between:.1f} s, tail {phase['tail_s']:.1f} s")
    key, name = ("b", "synthgen run") if dtype == "float32" else ("b16", f"synthgen run, model.dtype {dtype}")
    return _row(key, name, timed, int(phase["images"]), phase["generation_s"], detail)


def synthgen_bf16(cfg: Path, workdir: Path) -> Row:
    """(b) in bfloat16 (autocast, on a CPU with bf16 kernels; float32 with a warning elsewhere)."""
    return synthgen(cfg, workdir, "bfloat16")


def diffusers_loop(cfg: Path, workdir: Path) -> Row:
    out = _fresh(workdir / "diffusers-png")
    timed = run_python("benchmarks.diffusers_loop", str(cfg), str(out))
    report = timed.report()
    return _row("c1", "diffusers loop, PNG files one by one", timed, report["images"], report["loop_s"],
                _split(report, "import_s", "load_s"))


def ray_data(cfg: Path, workdir: Path) -> Row:
    out = _fresh(workdir / "ray-data-parquet")
    timed = run_python("benchmarks.ray_data", str(cfg), str(out))
    report = timed.report()
    return _row("c2", "Ray Data map_batches (actor) + write_parquet", timed, report["images"],
                report["pipeline_s"], _split(report, "import_s", "ray_init_s"))


CONTENDERS = {"a": bare, "at": bare_tuned, "b": synthgen, "b16": synthgen_bf16, "c1": diffusers_loop,
              "c2": ray_data}


def _row(key: str, name: str, timed: Timed, images: int, work_s: float, detail: str) -> Row:
    return Row(key, name, images, timed.wall_s, work_s, os.getloadavg()[0], detail)


def _split(report: dict, *keys: str) -> str:
    return ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {report[k]:.1f} s" for k in keys)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
