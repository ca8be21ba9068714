"""The fast paths keep the commit protocol: encoding overlapped with sampling keeps rows in order,
a failure in the overlapped encoder publishes nothing, and concurrent attempts commit once."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synthgen.engine.driver import prepare
from synthgen.engine.worker import Worker
from synthgen.output.formats.base import Encoder
from synthgen.spec.load import validate_spec
from synthgen.storage.layout import marker_path
from tests.conftest import tiny_spec


def make_worker(model: Path, out: Path, **changes) -> Worker:
    """Shards of 5 in batches of 2: three batches, the last one short, all overlapped."""
    changes = {"compute__batch_size": 2, **changes}
    return Worker(prepare(validate_spec(tiny_spec(model, out, **changes))).job, threads=1)


def shard_rows(worker: Worker, index: int) -> list[dict]:
    marker = worker.store.read_json(marker_path(index))
    return pq.read_table(worker.store.path(marker["file"])).to_pylist()


class FailingEncoder:
    """Encodes like the real one, but its `fail_on`-th batch raises (in the encode thread)."""

    def __init__(self, encoder: Encoder, fail_on: int) -> None:
        self.encoder, self.fail_on, self.calls = encoder, fail_on, 0

    def encode_batch(self, batch: np.ndarray) -> list[bytes]:
        self.calls += 1
        if self.calls == self.fail_on:
            raise OSError("encoder failed")
        return self.encoder.encode_batch(batch)


@pytest.mark.parametrize("image_format", ["png", "webp"])
def test_overlapped_encoding_keeps_rows_in_order(tmp_path: Path, class_model: Path,
                                                 image_format: str) -> None:
    worker = make_worker(class_model, tmp_path / "out", output__image_format=image_format)
    result = worker.run_shard(1)
    assert result.committed and result.rows == 5
    rows = shard_rows(worker, 1)
    assert [r["sample_id"] for r in rows] == list(range(5, 10))
    samples = worker.plan.samples(worker.plan.shard(1))
    serial = np.concatenate([worker.adapter.generate(samples[i : i + 2], worker.spec.sampler)
                             for i in range(0, 5, 2)])
    for row, pixels in zip(rows, serial, strict=True):
        assert row["image"]["bytes"] == worker.encoder.encode(pixels)
        if image_format == "png":  # lossless: the file holds exactly the generated pixels
            decoded = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
            assert np.array_equal(decoded, pixels[..., 0])
    assert worker.store.list("data") == [result.marker.file.split("/")[1]]


def test_failure_in_the_encoder_thread_publishes_nothing(tmp_path: Path, class_model: Path) -> None:
    worker = make_worker(class_model, tmp_path / "out")
    worker.encoder = FailingEncoder(worker.encoder, fail_on=2)
    with pytest.raises(OSError, match="encoder failed"):
        worker.run_shard(0)
    assert worker.store.list("data") == [] and worker.store.list("_commits") == []
    worker.encoder = worker.encoder.encoder
    result = worker.run_shard(0, attempt_no=1)
    assert result.committed and result.marker.attempt_no == 1
    assert worker.store.list("_commits") == ["shard-00000.json"] and len(worker.store.list("data")) == 1
    assert [r["sample_id"] for r in shard_rows(worker, 0)] == list(range(5))


def test_concurrent_attempts_commit_exactly_once(tmp_path: Path, class_model: Path) -> None:
    workers = [make_worker(class_model, tmp_path / "out") for _ in range(2)]
    results: dict[int, object] = {}
    gate = threading.Barrier(2)

    def attempt(n: int) -> None:
        gate.wait()
        results[n] = workers[n].run_shard(3, attempt_no=n)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [n for n, r in results.items() if r.committed]
    assert len(won) == 1
    marker = workers[0].store.read_json(marker_path(3))
    assert all(r.marker.to_json() == marker for r in results.values())
    assert workers[0].store.list("data") == [marker["file"].split("/")[1]]
    assert [r["sample_id"] for r in shard_rows(workers[0], 3)] == list(range(15, 20))
