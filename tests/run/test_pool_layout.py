"""`compute.workers: auto` without GPUs: one single-threaded actor per core, as many as memory
holds; a layout always fits the cluster (workers x threads <= cores), and the run log says it."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthgen.engine.job import JobContext
from synthgen.engine.pool import WEIGHT_COPIES, WORKER_BASE_BYTES, pool_plan
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from tests.conftest import tiny_spec

GIB = 1 << 30


def job(model_bytes: int | None, **changes: object) -> JobContext:
    changes = {"compute__workers": "auto", "compute__cpus_per_worker": "auto", **changes}
    spec = validate_spec(tiny_spec(Path("unused"), Path("unused"), **changes))
    return JobContext(spec=spec, manifest=Plan.build(spec).manifest, model_bytes=model_bytes)


@pytest.mark.parametrize(("model_bytes", "changes", "cluster", "expected"), [
    # small model: one actor per core, one thread each
    (10 << 20, {}, {"CPU": 2, "memory": 14 * GIB}, (2, 1.0)),
    (10 << 20, {}, {"CPU": 16, "memory": 64 * GIB}, (16, 1.0)),
    # cpus_per_worker pins the threads: as many actors of that size as the cores hold
    (10 << 20, {"compute__cpus_per_worker": 2}, {"CPU": 8, "memory": 64 * GIB}, (4, 2.0)),
    (10 << 20, {"compute__cpus_per_worker": 3}, {"CPU": 2, "memory": 64 * GIB}, (1, 3.0)),
    # a big model: memory caps the actors, the cores are shared among them
    (4 * GIB, {}, {"CPU": 16, "memory": 40 * GIB}, (3, 5.0)),
    (8 * GIB, {}, {"CPU": 16, "memory": 20 * GIB}, (1, 16.0)),
    # weights not on the driver's machine (a hub model not fetched yet): one actor on all cores
    (None, {}, {"CPU": 8, "memory": 64 * GIB}, (1, 8.0)),
    # device cuda without GPUs yet: GPU actors, not the CPU rule
    (10 << 20, {"model__device": "cuda"}, {"CPU": 8, "memory": 64 * GIB}, (1, 1.0)),
])
def test_cpu_layout(model_bytes: int | None, changes: dict, cluster: dict, expected: tuple) -> None:
    plan = pool_plan(job(model_bytes, **changes), cluster)
    assert (plan.workers, plan.cpus) == expected
    if not plan.gpus and changes.get("compute__cpus_per_worker", "auto") == "auto":
        assert plan.workers * plan.cpus <= cluster["CPU"]  # a valid layout: no core asked twice
    assert plan.why.startswith("workers auto")


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 7, 64])
@pytest.mark.parametrize("model_gib", [0.01, 1, 5, 30])
def test_every_auto_layout_is_valid(cores: int, model_gib: float) -> None:
    """For any machine and model: at least one actor, never more cores or memory than there are."""
    memory = 32 * GIB
    plan = pool_plan(job(int(model_gib * GIB)), {"CPU": cores, "memory": memory})
    assert plan.workers >= 1 and plan.cpus >= 1 and plan.workers * plan.cpus <= cores
    per_worker = WORKER_BASE_BYTES + WEIGHT_COPIES * model_gib * GIB
    assert plan.workers == 1 or plan.workers * per_worker <= memory
