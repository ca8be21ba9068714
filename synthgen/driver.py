"""The driver: check everything, claim the output, dispatch what is missing, finish the job.

All user mistakes surface before the first write; the first write is job.json, created only
if absent. A job already on the output is resumed when its job_id matches, refused otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from synthgen import __version__
from synthgen.errors import JobFailed, UserError
from synthgen.filter import check_filter
from synthgen.job import JobContext, commit_by_driver
from synthgen.lock import JobLock
from synthgen.manifest import Manifest
from synthgen.models import ModelInfo, inspect_model
from synthgen.models.loader import Fetch, NotCached
from synthgen.output import check_writable, redact
from synthgen.plan import Plan
from synthgen.progress import Progress
from synthgen.runlog import run_log
from synthgen.spec import JobSpec, validate_spec
from synthgen.storage import DISK_ERRNOS, JOB_FILE, SUCCESS_FILE, Store, failure_path, json_bytes
from synthgen.validate import check_plan_against_model

log = logging.getLogger("synthgen")


@dataclass(frozen=True)
class Prepared:
    """A checked job: its plan, its model's info and its output store."""

    plan: Plan
    info: ModelInfo | None  # None: a hub or remote model not on this machine (plan only)
    store: Store

    @property
    def job(self) -> JobContext:
        return JobContext(spec=self.plan.spec, manifest=self.plan.manifest)


def prepare(spec: JobSpec, manifest: Manifest | None = None, fetch: Fetch = "configs") -> Prepared:
    """Every check that needs no model weights and writes nothing to the output.

    The driver fetches a remote model's configs (never its weights); `synthgen plan` passes
    fetch="cached" and then checks what it can when the model is not on this machine.
    """
    plan = Plan.build(spec, manifest)
    try:
        info: ModelInfo | None = inspect_model(spec.model, fetch)
    except NotCached:
        info = None
    check_plan_against_model(plan, info)
    check_filter(plan)
    store = Store(spec.output.uri, spec.output.storage_options)
    check_writable(store)
    return Prepared(plan, info, store)


def load_job(uri: str, overrides: tuple[str, ...] = (), storage_options: dict | None = None
             ) -> tuple[JobSpec, Manifest]:
    """The spec and manifest a job stored in its output, with execution-only overrides."""
    from synthgen.spec import _parse_override, _set_dotted

    store = Store(uri, storage_options or {})
    if not store.exists(JOB_FILE):
        raise UserError("URI", uri, "holds no synthgen job (no job.json); check the path")
    record = store.read_json(JOB_FILE)
    data = record["spec"]
    data["output"]["uri"] = uri
    data["output"]["storage_options"] = {**data["output"].get("storage_options", {}),
                                         **(storage_options or {})}
    for item in overrides:
        _set_dotted(data, *_parse_override(item))
    return validate_spec(data), Manifest.from_json(record["manifest"])


def run_job(prepared: Prepared, address: str | None = None, takeover: bool = False,
            repair: bool = False, per_worker: bool = False) -> dict[str, Any]:
    """Run the job to completion on Ray, holding the output's job lock; returns the final status.

    `takeover`: take the lock from a driver believed dead. `repair`: first un-commit shards
    whose data is missing or corrupt, so they are regenerated. `per_worker`: show each
    worker's throughput. The run's log is kept in the output's `_logs/`.
    """
    holds_job(prepared)
    try:
        prepared.store.probe_create_only()
    except (FileNotFoundError, PermissionError) as exc:
        raise UserError("output.uri", prepared.plan.spec.output.uri,
                        f"cannot write there ({type(exc).__name__}: {exc}); check that the bucket "
                        "exists and that these credentials may write to it") from None
    with JobLock.acquire(prepared.store, takeover) as lock, run_log(prepared.store, prepared.plan.job_id):
        return _run_locked(prepared, address, lock, repair, per_worker)


def _run_locked(prepared: Prepared, address: str | None, lock: JobLock, repair: bool,
                per_worker: bool = False) -> dict[str, Any]:
    from synthgen.executor import Events, Executor, connect
    from synthgen.finalize import finalize
    from synthgen.repair import repair as repair_shards
    from synthgen.status import committed_markers, job_status

    store, plan = prepared.store, prepared.plan
    resumed = claim_output(prepared)
    if resumed and repair:
        repair_shards(store, plan)
    if resumed and store.exists(SUCCESS_FILE):
        log.info("job %s is already complete in %s: nothing to do", plan.job_id, plan.spec.output.uri)
        return job_status(store)
    markers = committed_markers(store)
    pending = [i for i in range(plan.num_shards) if i not in markers]
    log.info("job %s: %d samples in %d shards, %d committed, %d to run", plan.job_id,
             plan.total, plan.num_shards, len(markers), len(pending))
    failed: dict[int, str] = {}
    if pending:
        connect(address)
        done = sum(m["rows"] for m in markers.values())
        with Progress(total=plan.total, done=done, shards_total=plan.num_shards,
                      shards_done=len(markers), per_worker=per_worker) as progress:

            def on_failed(index: int, error: str, attempts: int) -> None:
                progress.failed(index)
                _record_failure(store, index, error, attempts)

            events = Events(on_progress=progress.in_flight, on_done=progress.shard_done,
                            on_failed=on_failed, on_retry=progress.retried,
                            on_worker_done=progress.worker_done,
                            commit=lambda result: commit_by_driver(store, result))
            job = replace(prepared.job, driver_commits=not store.conditional)
            failed = Executor(job, events).run(pending).failed
    if failed:
        lines = "; ".join(f"shard {i}: {e}" for i, e in sorted(failed.items()))
        raise JobFailed(f"{len(failed)} shard(s) failed: {lines}. "
                        f"Run `synthgen resume {plan.spec.output.uri}` to retry them.")
    lock.check()
    finalize(prepared)
    return job_status(store)


def claim_output(prepared: Prepared) -> bool:
    """Write job.json, or check the one there; True when the output already held this job."""
    if holds_job(prepared):
        return True
    store, plan = prepared.store, prepared.plan
    try:
        created = store.create_only(JOB_FILE, json_bytes(job_record(prepared)))
    except PermissionError:
        raise UserError("output.uri", plan.spec.output.uri,
                        "permission denied; choose an output you can write to") from None
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise UserError("output.uri", plan.spec.output.uri,
                        f"cannot write there ({exc.strerror}); free space or choose another "
                        "output") from None
    return not created and holds_job(prepared)


def holds_job(prepared: Prepared) -> bool:
    """True when the output holds this job; refuses another job's output before any write."""
    store, plan = prepared.store, prepared.plan
    if not store.exists(JOB_FILE):
        return False
    existing = store.read_json(JOB_FILE)
    if existing.get("job_id") != plan.job_id:
        raise UserError("output.uri", plan.spec.output.uri,
                        f"holds another job ({existing.get('job_id')}, this one is {plan.job_id}); "
                        "choose a new output, or `synthgen resume` that URI")
    return True


def job_record(prepared: Prepared) -> dict[str, Any]:
    plan, info = prepared.plan, prepared.info
    spec = plan.spec.model_dump(mode="json")
    for section in ("output", "model", "classes", "prompts"):
        if spec.get(section):
            spec[section]["storage_options"] = redact(spec[section].get("storage_options", {}))
    return {
        "job_id": plan.job_id,
        "spec": spec,
        "manifest": plan.manifest.to_json(),
        "plan": {k: v for k, v in plan.summary().items() if k != "per_class"},
        "model": {"source": info.source, "revision": info.revision, "family": info.family,
                  "license": info.license},
        "versions": versions(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def versions() -> dict[str, str]:
    """From the installed packages' metadata: importing diffusers here would cost the driver
    seconds of CPU (it pulls in torch._dynamo) that the actors need while they start."""
    from importlib.metadata import version

    return {"synthgen": __version__, "torch": version("torch"), "diffusers": version("diffusers")}


def _record_failure(store: Store, index: int, error: str, attempts: int) -> None:
    """Best effort: on a full disk or a failing store the record may not be writable either."""
    log.error("shard %d failed after %d attempts: %s", index, attempts, error)
    try:
        store.put_json(failure_path(index), {"shard": index, "error": error, "attempts": attempts,
                                             "failed_at": time.time()})
    except OSError as exc:
        log.warning("could not record the failure of shard %d: %s", index, exc)

