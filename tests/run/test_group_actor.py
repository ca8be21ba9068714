"""The JobGroup path without Ray: a WorkerActor runs shards of several jobs on one loaded model,
and each job's shards are the bytes its own Worker writes alone; with several models (a sweep
over generators) it holds one at a time, and the dispatch hands it its own model's shards first."""

from __future__ import annotations

import gc
import weakref
from collections import deque
from pathlib import Path

from synthgen.engine.actor import WorkerActor
from synthgen.engine.dispatch import by_model, next_shard
from synthgen.engine.driver import prepare
from synthgen.engine.job import JobGroup, ShardAddress
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import ModelCache, Worker
from synthgen.models.registry import inspect_model
from synthgen.spec.load import validate_spec
from synthgen.storage import s3
from tests.conftest import _tiny_models, tiny_spec


def job(model: Path, out: Path, **changes):
    prepared = prepare(validate_spec(tiny_spec(model, out, **changes)))
    claim_output(prepared)
    return prepared.job


def test_one_model_load_for_every_job_of_the_group(tmp_path: Path, class_model: Path,
                                                   one_torch_thread: None) -> None:
    group = JobGroup({"0": job(class_model, tmp_path / "a", sampler__steps=2),
                      "1": job(class_model, tmp_path / "b", sampler__guidance_scale=1.0)})
    actor = WorkerActor(group, 1, s3.Credentials.from_env())
    results = [actor.run_shard(ShardAddress(key, index), 0) for key in ("1", "0") for index in (0, 1)]
    assert [(r.job, r.shard) for r in results] == [("1", 0), ("1", 1), ("0", 0), ("0", 1)]
    assert all(r.committed for r in results)
    assert {r.actor.model_loads for r in results} == {1} and results[-1].actor.jobs == 2
    assert actor.workers["0"].adapter is actor.workers["1"].adapter
    alone = Worker(job(class_model, tmp_path / "c", sampler__guidance_scale=1.0), threads=1)
    same = alone.run_shard(1)
    assert alone.store.read_bytes(same.marker.file) == actor.workers["1"].store.read_bytes(
        results[1].marker.file), "a shard of the group is the bytes of the job run alone"


def test_the_cache_loads_again_for_another_model_spec(class_model: Path, one_torch_thread: None) -> None:
    cache = ModelCache()
    spec = validate_spec(tiny_spec(class_model, Path("unused")))
    info = inspect_model(spec.model)
    first = cache.adapter(info, spec.model)
    assert cache.adapter(info, spec.model.model_copy(update={"storage_options": {"x": 1}})) is first
    held = weakref.ref(first)
    del first
    other = cache.adapter(info, spec.model.model_copy(update={"dtype": "bfloat16"}))
    assert other is not None and cache.loads == 2 and cache.load_s > 0
    gc.collect()
    assert held() is None, "the cache holds one model: the first is released before the next loads"
    assert [v["loads"] for v in cache.per_model.values()] == [1, 1] and len(cache.per_model) == 2


def test_an_actor_finishes_one_model_then_releases_it_for_the_next(
        tmp_path: Path, class_model: Path, one_torch_thread: None) -> None:
    second = _tiny_models().class_unet(tmp_path / "second-unet", seed=1)
    group = JobGroup({"0": job(class_model, tmp_path / "a"), "1": job(second, tmp_path / "b"),
                      "2": job(class_model, tmp_path / "c", sampler__steps=2)})
    actor = WorkerActor(group, 1, s3.Credentials.from_env(), first="1")
    first = weakref.ref(actor.workers["1"].adapter)
    results = [actor.run_shard(ShardAddress(key, 0), 0) for key in ("1", "0", "2")]
    gc.collect()
    assert first() is None, "the first model is released once the actor moves on"
    assert set(actor.workers) == {"0", "2"} and actor.workers["0"].adapter is actor.workers["2"].adapter
    stats = results[-1].actor
    assert stats.model_loads == 2 and stats.jobs == 3
    assert {model.split("@")[0]: n["loads"] for model, n in stats.loads.items()} == {
        str(second): 1, str(class_model): 1}


def test_shards_queue_by_model_and_an_actor_keeps_its_model() -> None:
    models = {"0": "A", "1": "B", "2": "A", "3": "B"}
    shards = [ShardAddress(job, i) for job in "0123" for i in (0, 1)]
    queue = by_model(shards, models)
    assert [a.job for a in queue] == ["0", "0", "2", "2", "1", "1", "3", "3"]
    assert next_shard(queue, models, {}) == ShardAddress("0", 0)
    assert next_shard(queue, models, {"x": "A"}) == ShardAddress("1", 0), "a new actor: a model no one holds"
    assert next_shard(queue, models, {"x": "A", "y": "B"}, "y") == ShardAddress("1", 0)
    rest = deque([ShardAddress("0", 1), ShardAddress("3", 0)])
    assert next_shard(rest, models, {"x": "A", "y": "B"}, "y") == ShardAddress("3", 0)
    last = deque([ShardAddress("0", 1)])
    assert next_shard(last, models, {"x": "A", "y": "B"}, "y") == ShardAddress("0", 1)
    assert next_shard(deque(), models, {}) is None
