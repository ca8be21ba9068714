"""The bare worker (no Ray): determinism, the bound across batch sizes, OOM backoff, schedulers."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synthgen.engine.driver import prepare
from synthgen.engine.worker import Worker
from synthgen.output.shard_schema import shard_table
from synthgen.spec.load import validate_spec
from synthgen.storage.commit import commit_marker, read_marker
from synthgen.storage.layout import marker_path
from synthgen.storage.store import table_bytes
from tests.conftest import tiny_spec

# Measured on CPU: another batch size moves a pixel by at most this many uint8 levels.
BATCH_SIZE_BOUND = 1
CORE_SCHEDULERS = ["ddpm", "ddim", "dpm++", "euler", "euler-a", "unipc"]


def make_worker(model: Path, out: Path, **changes) -> Worker:
    prepared = prepare(validate_spec(tiny_spec(model, out, **changes)))
    return Worker(prepared.job, threads=1)


def shard_pixels(worker: Worker, index: int) -> dict[int, np.ndarray]:
    marker = worker.store.read_json(marker_path(index))
    table = pq.read_table(worker.store.path(marker["file"]))
    return {row["sample_id"]: np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
            for row in table.to_pylist()}


def test_retry_regenerates_bit_for_bit(tmp_path: Path, class_model: Path) -> None:
    worker = make_worker(class_model, tmp_path / "out", sampler__scheduler="ddpm")
    first = worker.run_shard(1)
    data = worker.store.read_bytes(first.marker.file)
    worker.store.delete(marker_path(1))
    second = worker.run_shard(1, attempt_no=1)
    assert second.committed and second.marker.file != first.marker.file
    assert worker.store.read_bytes(second.marker.file) == data


def test_committed_shard_is_left_alone(tmp_path: Path, class_model: Path) -> None:
    worker = make_worker(class_model, tmp_path / "out")
    first = worker.run_shard(0)
    again = worker.run_shard(0, attempt_no=1)
    assert not again.committed and again.marker == first.marker
    assert worker.store.list("data") == [first.marker.file.split("/")[1]]


def test_losing_a_marker_race_removes_own_data_file(tmp_path: Path, class_model: Path) -> None:
    a = make_worker(class_model, tmp_path / "out")
    b = make_worker(class_model, tmp_path / "out")
    shard = a.plan.shard(2)
    drawn = a._generate_shard(a.plan.samples(shard), 2)
    data = table_bytes(shard_table(drawn.rows(), a.provenance, a.plan.manifest.class_names))
    first = a._put_data(shard, data, 0, drawn, time.perf_counter())
    second = b._put_data(shard, data, 1, drawn, time.perf_counter())
    assert first.file != second.file and a.store.exists(second.file)
    winner, won_a = commit_marker(a.store, first)
    loser, won_b = commit_marker(b.store, second)
    assert won_a and not won_b and loser == winner == first
    assert read_marker(a.store, 2) == first
    assert a.store.list("data") == [first.file.split("/")[1]]  # the second's data file is gone


@pytest.mark.parametrize("scheduler", ["ddim", "ddpm", "euler-a"])
def test_batch_size_moves_pixels_by_noise_only(tmp_path: Path, class_model: Path,
                                               scheduler: str) -> None:
    big = make_worker(class_model, tmp_path / "a", sampler__scheduler=scheduler,
                      compute__batch_size=5)
    small = make_worker(class_model, tmp_path / "b", sampler__scheduler=scheduler,
                        compute__batch_size=2)
    big.run_shard(0)
    small.run_shard(0)
    a, b = shard_pixels(big, 0), shard_pixels(small, 0)
    assert a.keys() == b.keys()
    for sample_id in a:
        diff = np.abs(a[sample_id].astype(int) - b[sample_id].astype(int)).max()
        assert diff <= BATCH_SIZE_BOUND, (scheduler, sample_id, diff)
    # Different samples really are different images (the check above is not vacuous).
    assert not np.array_equal(a[0], a[1])


def test_out_of_memory_halves_the_batch(tmp_path: Path, class_model: Path, faults_here, caplog) -> None:
    reference = make_worker(class_model, tmp_path / "ref", compute__batch_size=4)
    reference.run_shard(0)
    worker = make_worker(class_model, tmp_path / "out", compute__batch_size=4)
    with faults_here("oom:0:*"):
        result = worker.run_shard(0)
    assert result.committed and result.batch_size == 1 and result.marker.batch_size == 1
    assert "batch size now 2" in caplog.text and "batch size now 1" in caplog.text
    a, b = shard_pixels(reference, 0), shard_pixels(worker, 0)
    assert all(np.abs(a[i].astype(int) - b[i].astype(int)).max() <= BATCH_SIZE_BOUND for i in a)


@pytest.mark.parametrize("scheduler", CORE_SCHEDULERS)
def test_every_scheduler_makes_images(tmp_path: Path, class_model: Path, scheduler: str) -> None:
    worker = make_worker(class_model, tmp_path / "out", sampler__scheduler=scheduler)
    result = worker.run_shard(0)
    pixels = shard_pixels(worker, 0)
    assert result.rows == 5 and len(pixels) == 5
    assert all(p.shape == (8, 8) and p.dtype == np.uint8 for p in pixels.values())


def test_unconditional_rgb_unet_saved_alone(tmp_path: Path, plain_model: Path) -> None:
    worker = make_worker(plain_model, tmp_path / "out", sampler__guidance_scale=1.0)
    worker.run_shard(0)
    pixels = shard_pixels(worker, 0)
    assert all(p.shape == (8, 8, 3) for p in pixels.values())
