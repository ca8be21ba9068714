"""Outputs on local disk and on S3 (moto over HTTP) for the trust tests: every case runs on both
(and on SeaweedFS, a real store, where a test says so)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthgen.storage.store import Store
from tests.conftest import tiny_spec
from tests.helpers.dataset_outputs import run_in_process
from tests.helpers.s3server import BUCKET, fresh_s3


@pytest.fixture(params=["disk", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """name -> an output URI on this test's backend (a folder under tmp_path, or s3://bucket/ on
    moto, or on SeaweedFS for the tests parametrized ON_EVERY_BACKEND)."""
    if request.param == "disk":
        return lambda name: str(tmp_path / name)
    fresh_s3(request, "moto" if request.param == "s3" else request.param)
    return lambda name: f"s3://{BUCKET}/{name}"


ON_EVERY_BACKEND = pytest.mark.parametrize("backend", ["disk", "s3", "seaweedfs"], indirect=True)


def put(store: Store, rel: str, data: bytes) -> None:
    """A file put as a user (or a stray process) would: no synthgen code path."""
    store.fs.makedirs(store.path(rel).rsplit("/", 1)[0], exist_ok=True)
    store.fs.pipe_file(store.path(rel), data)


@pytest.fixture
def finished(backend: Callable[[str], str], class_model: Path, one_torch_thread: None) -> Any:
    """A finished job (3 shards of 4 samples, in this process, no Ray) on the backend."""
    return run_in_process(tiny_spec(class_model, backend("job"), classes__count=4, output__shard_size=4,
                                    sampler__steps=2))
