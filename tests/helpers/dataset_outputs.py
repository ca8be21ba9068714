"""Finished outputs for the dataset tests, built once per session on the tiny models.

`class_output`: a class job run by the real `synthgen run` on the session's Ray (with a
secret on its command line and in its environment, which the run log must not keep).
`prompt_output`: a prompt job whose prompts are partly labeled; `unlabeled_output`: one
without any label and more prompts than a preview shows. Both built in-process (bare
Worker + finalize), which is much faster than a Ray actor on a small machine, in the
`by_class` order (each prompt's samples one after another).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import synthgen, tiny_spec, write_spec

SECRET_VALUE = "zz-do-not-store-4f1d9c"
FOX = "a red fox in the snow"
FROG = "a tiny green frog on a wet leaf, photographed at dawn with a macro lens in the rain"


@dataclass(frozen=True)
class Built:
    path: Path
    total: int
    run: subprocess.CompletedProcess[str] | None = None


@pytest.fixture(scope="session")
def class_output(tmp_path_factory: pytest.TempPathFactory, class_model: Path,
                 ray_address: str) -> Built:
    """3 classes (a, b, c) x 7 images in shards of 5, by `synthgen run --per-worker`."""
    root = tmp_path_factory.mktemp("class-job")
    spec = write_spec(root / "spec.yaml", tiny_spec(class_model, root / "out"))
    run = synthgen("run", str(spec), "--per-worker",
                   "--set", f"output.storage_options.password={SECRET_VALUE}",
                   address=ray_address, env={"MY_SERVICE_TOKEN": SECRET_VALUE})
    assert run.returncode == 0, run.stderr
    return Built(root / "out", 21, run)


@pytest.fixture(scope="session")
def prompt_output(tmp_path_factory: pytest.TempPathFactory, plain_model: Path) -> Built:
    """Prompts fox (label fox, 3), whale (no label, 2), frog (label frog, 3): 8 images, shards of 3."""
    items = [{"prompt": FOX, "label": "fox"}, {"prompt": "a blue whale", "count": 2},
             {"prompt": FROG, "label": "frog"}]
    return _build(tmp_path_factory.mktemp("prompt-job"), plain_model, items, shard_size=3)


@pytest.fixture(scope="session")
def unlabeled_output(tmp_path_factory: pytest.TempPathFactory, plain_model: Path) -> Built:
    """25 unlabeled prompts x 1 image, shards of 10."""
    items = [f"prompt number {i}" for i in range(25)]
    return _build(tmp_path_factory.mktemp("unlabeled-job"), plain_model, items, shard_size=10, count=1)


def _build(root: Path, model: Path, items: list[Any], shard_size: int, count: int = 3) -> Built:
    # by_class: these tests look at prompts one after another; the class job covers interleaving.
    spec = tiny_spec(model, root / "out", output__shard_size=shard_size, sampler__guidance_scale=1.0,
                     sampler__steps=2, output__order="by_class")
    del spec["classes"]
    spec["prompts"] = {"items": items, "count": count}
    return Built(root / "out", run_in_process(spec).plan.total)


def run_in_process(spec: dict[str, Any]) -> Any:
    """The whole job by a bare Worker in this process, then finalize; returns it prepared."""
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.engine.worker import Worker
    from synthgen.output.catalog import Catalog
    from synthgen.output.finalize import finalize
    from synthgen.spec.load import validate_spec

    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    worker = Worker(prepared.job, threads=1)
    for index in range(prepared.plan.num_shards):
        worker.run_shard(index)
    finalize(Catalog.read(prepared.store))
    return prepared


def committed_rows(out: Path) -> list[dict[str, Any]]:
    """Every row of a local output's committed shards, in sample_id order, each sample_id once
    (found through the commit markers, never a listing of data/)."""
    rows: dict[int, dict[str, Any]] = {}
    for marker_file in sorted((out / "_commits").glob("shard-*.json")):
        marker = json.loads(marker_file.read_text())
        for row in pq.read_table(out / marker["file"]).to_pylist():
            assert row["sample_id"] not in rows, "duplicate sample_id"
            rows[row["sample_id"]] = row
    return [rows[i] for i in sorted(rows)]
