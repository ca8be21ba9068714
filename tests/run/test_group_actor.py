"""The JobGroup path without Ray: a WorkerActor runs shards of several jobs on one loaded model,
and each job's shards are the bytes its own Worker writes alone."""

from __future__ import annotations

from pathlib import Path

from synthgen.engine.actor import WorkerActor
from synthgen.engine.driver import prepare
from synthgen.engine.job import JobGroup, ShardAddress
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import ModelCache, Worker
from synthgen.models.registry import inspect_model
from synthgen.spec.load import validate_spec
from synthgen.storage import s3
from tests.conftest import tiny_spec


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
    other = cache.adapter(info, spec.model.model_copy(update={"dtype": "bfloat16"}))
    assert other is not first and cache.loads == 2 and cache.load_s > 0
