"""The driver's dispatch rate: synthgen's real executor loop over actors that do nothing.

Each no-op shard costs the driver what a real one costs it (a `run_shard` call, a result, the
progress polls), so shards/s here bounds how many workers one driver can keep busy:
workers <= rate x seconds per shard. Run as a whole process on its own embedded Ray:
`python -m benchmarks.dispatch CONFIG WORKERS SHARDS`; prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from benchmarks.config import BenchConfig


class NoopActor:
    """WorkerActor's interface, without a model: every shard is done at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def run_shard(self, address: Any, attempt_no: int) -> Any:
        from synthgen.engine.job import ShardResult
        from synthgen.storage.commit import CommitMarker

        index = address.index
        marker = CommitMarker(shard=index, file=f"data/shard-{index:05d}-noop.parquet", rows=1, bytes=0,
                              sha256="", first_sample_id=index, last_sample_id=index, attempt="noop",
                              attempt_no=attempt_no, job_id="noop", host="noop", seconds=0.0,
                              batch_size=1, committed_at=0.0)
        return ShardResult(shard=index, rows=1, seconds=0.0, committed=True, marker=marker, batch_size=1)

    def progress(self) -> int:
        return 0

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


class NoopSink:
    """The outputs' side of the executor, without an output: results are taken as they come."""

    def commit(self, result: Any) -> Any:
        return result

    def failed(self, address: Any, error: str, attempts: int) -> None:
        pass

    def fenced(self) -> None:
        return None


def measure(cfg: BenchConfig, workers: int, shards: int) -> dict[str, float]:
    import ray

    from benchmarks.synthgen_run import job_spec
    from synthgen.engine.executor import Events, Executor
    from synthgen.engine.job import JobContext, JobGroup, ShardAddress
    from synthgen.engine.pool import connect_ray
    from synthgen.spec.load import validate_spec
    from synthgen.spec.manifest import resolve_manifest

    spec = validate_spec(job_spec(cfg, cfg_output(), workers=workers))
    group = JobGroup({"": JobContext(spec=spec, manifest=resolve_manifest(spec))})
    connect_ray(None)
    done: list[float] = []
    executor = Executor(group, NoopSink(), Events(on_done=lambda result: done.append(time.perf_counter())))
    executor.actor_class = ray.remote(NoopActor)
    executor.actor_options = {**executor.actor_options, "num_cpus": 0}
    outcome = executor.run([ShardAddress("", i) for i in range(shards)])
    ray.shutdown()
    if sorted(r.shard for r in outcome.committed) != list(range(shards)) or outcome.failed:
        raise RuntimeError(f"shards not committed exactly once: {outcome}")
    # From the first result on: the actors have started, every shard after it is pure dispatch.
    return {"workers": workers, "shards": shards, "shards_per_s": (len(done) - 1) / (done[-1] - done[0])}


def cfg_output() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="synthgen-dispatch-")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    config, workers, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(BenchConfig.load(config), workers, shards)))
