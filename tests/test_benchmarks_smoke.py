"""The benchmark code paths on a tiny job: every contender makes every image, (a) makes exactly
synthgen's pixels, and the measurements read what they claim. No timing assertions."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from benchmarks.config import BenchConfig
from benchmarks.contenders import Row
from benchmarks.extras import driver_memory, process_summary
from benchmarks.model import build_model
from benchmarks.procs import env_without_ray_address, run_python, run_timed
from benchmarks.run import table
from benchmarks.synthgen_run import run_synthgen


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark's model, on a job of 3 classes x 5 images, 2 steps, batches of 4, shards of 6:
    shards end mid-batch, so 'the same batches' is really tested."""
    base = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig(model=str(build_model(base / "model")), per_class=5, steps=2, batch_size=4,
                      shard_size=6, threads=1)
    return cfg.save(base / "config.json")


def ray_env(address: str) -> dict[str, str]:
    return env_without_ray_address({"RAY_ADDRESS": address})


def test_batches_follow_synthgen_shards(cfg_file: Path) -> None:
    cfg = BenchConfig.load(cfg_file)
    assert [list(b) for b in cfg.batches()] == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11], [12, 13, 14]]
    assert [cfg.label(i) for i in (0, 4, 5, 14)] == [0, 0, 1, 2]


def test_bare_loop_makes_synthgen_pixels_exactly(cfg_file: Path, ray_address: str) -> None:
    from benchmarks.bare import sample_seed
    from synthgen.spec.plan import sample_seed as synthgen_seed

    assert all(sample_seed(7, i) == synthgen_seed(7, i) for i in range(50))
    dump = cfg_file.parent / "bare.npy"
    report = run_python("benchmarks.bare", str(cfg_file), "--dump", str(dump)).report()
    assert report["images"] == 15 and report["loop_s"] > 0 and report["threads"] == 1
    bare = np.load(dump)
    assert bare.shape == (15, 16, 16, 3) and bare.dtype == np.uint8

    cfg = BenchConfig.load(cfg_file)
    timed, phase = run_synthgen(cfg, cfg_file.parent / "synthgen", address=ray_address,
                                cpus_per_worker=1)
    out = cfg_file.parent / "synthgen" / "out"
    assert phase["images"] == 15 and phase["startup_s"] > 0 and phase["generation_s"] > 0
    assert phase["tail_s"] > 0 and phase["shard_s"] <= phase["generation_s"] < timed.wall_s
    rows = pq.read_table(out / "index.parquet").num_rows
    assert rows == 15
    ours = {}
    for marker in sorted((out / "_commits").glob("*.json")):
        table_ = pq.read_table(out / json.loads(marker.read_text())["file"])
        for row in table_.to_pylist():
            ours[row["sample_id"]] = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
    assert sorted(ours) == list(range(15))
    assert all(np.array_equal(ours[i], bare[i]) for i in range(15))
    assert not np.array_equal(bare[0], bare[1])


def test_diffusers_loop_saves_one_png_per_image(cfg_file: Path, tmp_path: Path) -> None:
    report = run_python("benchmarks.diffusers_loop", str(cfg_file), str(tmp_path)).report()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert report["images"] == 15 and len(files) == 15
    assert files[0] == "0/0000000.png" and files[-1] == "2/0000014.png"
    assert Image.open(tmp_path / files[0]).size == (16, 16)


def test_ray_data_writes_every_image_to_parquet(cfg_file: Path, tmp_path: Path, ray_address: str) -> None:
    report = run_python("benchmarks.ray_data", str(cfg_file), str(tmp_path / "out"),
                        env=ray_env(ray_address)).report()
    table_ = pq.read_table(tmp_path / "out")
    assert report["images"] == 15 and table_.num_rows == 15
    assert sorted(table_.column("sample_id").to_pylist()) == list(range(15))
    first = table_.column("image")[0].as_py()
    assert Image.open(io.BytesIO(first)).size == (16, 16)


def test_dispatch_runs_the_real_executor_over_every_shard(cfg_file: Path, ray_address: str) -> None:
    report = run_python("benchmarks.dispatch", str(cfg_file), "2", "40", env=ray_env(ray_address)).report()
    assert report["workers"] == 2 and report["shards"] == 40 and report["shards_per_s"] > 0


def test_driver_memory_plans_a_million_samples(cfg_file: Path) -> None:
    cfg = BenchConfig.load(cfg_file)
    rows = driver_memory(cfg, cfg_file.parent)
    assert [r["samples"] for r in rows] == [15, 1_000_000]
    assert rows[1]["shards"] == 1_000_000 // 6 + 1
    assert [r["status_committed"] for r in rows] == [15, 5 * 6]  # five markers of 6 rows
    assert all(r["plan_peak_mb"] > 20 and r["status_peak_mb"] > 20 for r in rows)


def test_tree_watcher_sees_a_child_peak(tmp_path: Path) -> None:
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', " \
           "'b = bytearray(300 << 20); import time; time.sleep(0.5)'])"
    timed = run_timed([sys.executable, "-c", code], watch_every_s=0.05)
    assert timed.returncode == 0 and len(timed.procs) == 2
    child = max(timed.procs.values(), key=lambda p: p.peak_mb)
    assert child.peak_mb > 290 and timed.procs[timed.pid].peak_mb < 200
    summary = process_summary(timed)
    assert summary["worker_peak_mb"] == [] and summary["driver_peak_mb"] < 200


def test_table_prints_images_per_second_and_ratios() -> None:
    rows = [Row("a", "bare", 600, 12.0, 11.0, 0.5), Row("at", "bare tuned", 600, 10.0, 9.0, 0.5),
            Row("b", "synthgen", 600, 10.5, 9.2, 0.5),
            Row("c1", "diffusers", 600, 11.0, 10.0, 0.5), Row("c2", "ray data", 600, 20.0, 15.0, 0.5)]
    text = table(rows)
    assert "(b)/(at) = 0.952: synthgen run against the bare loop with the same allocator settings " \
           "and threads (target >= 0.95: met)" in text
    assert "(b)/(a) = 1.143" in text and "note:" not in text
    slower = table([rows[1], Row("b", "synthgen", 600, 11.0, 9.2, 2.5)])
    assert "(target >= 0.95: NOT met)" in slower and "note: the load average" in slower
    assert "(b)/(c1) = 1.048 (faster)" in text and "(b)/(c2) = 1.905 (faster)" in text
    assert "60.0" in text  # (a)'s images/s


def test_sampler_guide_rows_take_guidance_ranges_the_spec_accepts() -> None:
    from benchmarks import sampler_guide
    from synthgen.spec.distributions import Choice, Uniform
    from synthgen.spec.load import validate_spec

    rows = sampler_guide.rows({"scheduler": "dpm++", "steps": 10, "guidance_scale": 1.5}, "", "2",
                              sampler_guide.RANGES, filtered=False)
    assert [r.guidance_text for r in rows] == ["2", "uniform [1, 3]", "choice [1, 1.5, 2, 3]"]
    forms = [validate_spec({"classes": {"names": ["0"]}, "sampler": {"guidance_scale": r.guidance_spec}})
             .sampler.guidance_scale for r in rows]
    assert forms == [2.0, Uniform(uniform=(1.0, 3.0)), Choice(choice=(1.0, 1.5, 2.0, 3.0))]


def test_tuned_contender_uses_the_workers_allocator_settings() -> None:
    from benchmarks.contenders import TUNED_MALLOC
    from synthgen.models.runtime import M_MMAP_THRESHOLD, M_TOP_PAD, M_TRIM_THRESHOLD, SETTINGS

    names = {M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_", M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
             M_TOP_PAD: "MALLOC_TOP_PAD_"}
    assert {names[param]: str(value) for param, value in SETTINGS} == TUNED_MALLOC


def test_manifest_scale_measures_job_json_and_the_commands() -> None:
    from benchmarks.manifest_scale import measure

    found = measure(300)
    assert found["rows"] == 300 and 0 < found["job_json_bytes"] < 4096 and found["manifest_bytes"] > 0
    assert all(found[step]["peak_mb"] > 20 and found[step]["s"] > 0
               for step in ("plan", "claim", "status", "verify"))
