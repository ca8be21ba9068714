"""The driver: check everything, open the outputs, dispatch what is missing, finish the jobs.

Every check that needs no model weights is made before anything is written (`prepare`); the
output's life from then on is JobOutput's (engine/lifecycle.py). `run_outputs` is the locked run
that `run`, `resume` and `sweep` share: every pending shard of every open output on one pool of
actors, one progress bar over them all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from synthgen.engine.job import CheckedJob, ShardAddress, ShardResult
from synthgen.engine.lifecycle import JobOutput, Outputs, RunOptions
from synthgen.engine.plan_checks import check_plan_against_model
from synthgen.engine.progress import Progress
from synthgen.errors import JobFailed
from synthgen.inputs.labeled_keys import job_manifest
from synthgen.models.configs import ModelInfo
from synthgen.models.registry import inspect_model
from synthgen.models.runtime import resolve_dtype
from synthgen.models.sources import Fetch, NotCached, check_caption_model
from synthgen.output.catalog import job_status
from synthgen.output.job_record import read_job_record
from synthgen.quality.classifiers import check_filter
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.load import Override, apply_overrides, validate_spec
from synthgen.spec.manifest import Manifest
from synthgen.spec.plan import Plan
from synthgen.storage.store import Store, check_writable

log = logging.getLogger("synthgen")


def prepare(spec: JobSpec, manifest: Manifest | None = None, fetch: Fetch = "configs") -> CheckedJob:
    """Every check that needs no model weights and writes nothing to the output.

    The driver fetches a remote model's configs (never its weights); `synthgen plan` passes
    fetch="cached" and then checks what it can when the model is not on this machine.
    """
    plan = Plan.build(pin_dtype(spec), manifest or job_manifest(spec))
    try:
        info: ModelInfo | None = inspect_model(spec.model, fetch)
    except NotCached:
        info = None
    check_plan_against_model(plan, info)
    check_caption_model(spec, fetch)
    check_filter(plan)
    store = Store(spec.output.uri, spec.output.storage_options)
    check_writable(store)
    return CheckedJob(plan, info, store)


def pin_dtype(spec: JobSpec) -> JobSpec:
    """`model.dtype: auto` as the dtype it resolves to here: the resolved dtype is what changes
    the data, so it is what job.json, job_id and the card hold (a resume reads it back)."""
    dtype = resolve_dtype(spec.model.dtype, spec.model.device)
    if dtype == spec.model.dtype:
        return spec
    return spec.model_copy(update={"model": spec.model.model_copy(update={"dtype": dtype})})


def load_job(uri: str, overrides: Iterable[Override] = (), storage_options: dict | None = None
             ) -> tuple[JobSpec, Manifest]:
    """The spec and manifest a job stored in its output, with execution-only overrides."""
    store = Store(uri, storage_options or {})
    check_writable(store, "URI")  # a store mistake in seconds, before job.json is read
    plan = read_job_record(store).plan
    data = plan.spec.model_dump(mode="json")
    data["output"]["uri"] = uri
    data["output"]["storage_options"] = {**data["output"].get("storage_options", {}),
                                         **(storage_options or {})}
    apply_overrides(data, overrides)
    return validate_spec(data), plan.manifest


def run_job(prepared: CheckedJob, options: RunOptions | None = None) -> dict[str, Any]:
    """Run the job to completion on Ray, holding the output's job lock; returns the final status.
    The run's log is kept in the output's `_logs/`."""

    options = options or RunOptions()
    plan = prepared.plan
    with JobOutput.open(prepared, options, logged=True) as output:
        if output.complete:
            log.info("job %s is already complete in %s: nothing to do", plan.job_id, plan.spec.output.uri)
            return job_status(output.finish())
        log.info("job %s: %d samples in %d shards, %d committed, %d to run", plan.job_id, plan.total,
                 plan.num_shards, plan.num_shards - len(output.pending), len(output.pending))
        failed, started = run_outputs([output], options)
        with stopping(started):
            if failed:
                lines = "; ".join(f"shard {a.index}: {e}" for a, e in sorted(failed.items()))
                raise JobFailed(f"{len(failed)} shard(s) failed: {lines}. "
                                f"Run `synthgen resume {plan.spec.output.uri}` to retry them.")
            return job_status(output.finish())


def run_outputs(outputs: list[JobOutput], options: RunOptions,
                on_done: Callable[[ShardResult], None] | None = None
                ) -> tuple[dict[ShardAddress, str], bool]:
    """Run the pending shards of every output on one pool of actors (a single job is a group of
    one); `on_done` hears of each shard committed. Returns the shards given up, and whether this
    started an embedded Ray (to stop, with `stopping`, while the outputs are finished)."""
    todo = [output for output in outputs if output.pending]
    if not todo:
        return {}, False
    # ray only once there is something to run: `synthgen plan` never pays for it
    from synthgen.engine.executor import Events, Executor
    from synthgen.engine.pool import connect_ray

    started = connect_ray(options.address)
    total = sum(o.plan.total for o in todo)
    shards = sum(o.plan.num_shards for o in todo)
    left = [(o, i) for o in todo for i in o.pending]
    with Progress(total=total, done=total - sum(o.plan.shard(i).size for o, i in left),
                  shards_total=shards, shards_done=shards - len(left),
                  per_worker=options.per_worker) as progress:

        def done(result: ShardResult) -> None:
            progress.shard_done(result)
            if on_done is not None:
                on_done(result)

        events = Events(on_progress=progress.in_flight, on_done=done, on_retry=progress.retried,
                        on_failed=progress.failed, on_worker_done=progress.worker_done)
        sink = Outputs(todo)
        addresses = [ShardAddress(o.key, i) for o, i in left]
        return Executor(sink.group(), sink, events).run(addresses).failed, started


def stopping(started: bool) -> contextlib.AbstractContextManager[None]:
    """Shut down the embedded Ray this run started while the body finishes the outputs."""
    if not started:
        return contextlib.nullcontext()
    from synthgen.engine.pool import stopping_ray  # ray: only once this run started one

    return stopping_ray(True)
