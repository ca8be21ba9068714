"""The captions phase: before any image, the job's captions are written once and committed.

Caption actors (as many as image actors, reserving the same GPU each) write the classes' captions
in parallel, one class per call. The driver builds `captions/captions.parquet` whole, puts it,
then creates its marker only if absent: from then on the captions are part of the job, and a
retry or resume reads them, never regenerates them. The actors are killed (after releasing their
model) before the image pool starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
from rich.progress import Progress

from synthgen.errors import JobFailed
from synthgen.run.job import JobContext
from synthgen.spec.plan import Plan
from synthgen.storage import s3
from synthgen.storage.layout import CAPTIONS_FILE, CAPTIONS_MARKER
from synthgen.storage.parquet import read_parquet, table_bytes
from synthgen.storage.store import Store, json_bytes

log = logging.getLogger("synthgen")

Captions = dict[int, tuple[str, ...]]

SCHEMA = pa.schema([("label", pa.int64()), ("label_name", pa.string()), ("caption_id", pa.int64()),
                    ("caption", pa.string()), ("draw", pa.int64()), ("seed", pa.int64())])


def wants_captions(plan: Plan) -> bool:
    return plan.spec.classes is not None and plan.spec.classes.captions is not None


def read_captions(store: Store) -> tuple[Captions, pa.Table] | None:
    """The committed captions (label -> texts by caption_id) and their table; None before the
    marker exists. A file that does not match its marker is an error, never silently redone."""
    if not store.exists(CAPTIONS_MARKER):
        return None
    marker = store.read_json(CAPTIONS_MARKER)
    data = store.read_bytes(marker["file"])
    if hashlib.sha256(data).hexdigest() != marker["sha256"]:
        raise JobFailed(f"{marker['file']} does not match its marker {CAPTIONS_MARKER} (sha256); "
                        "the committed captions were changed or damaged")
    table = read_parquet(data).sort_by([("label", "ascending"), ("caption_id", "ascending")])
    captions: dict[int, list[str]] = {}
    for row in table.select(["label", "caption"]).to_pylist():
        captions.setdefault(row["label"], []).append(row["caption"])
    return {label: tuple(texts) for label, texts in captions.items()}, table


def ensure_captions(job: JobContext, store: Store, connect: Callable[[], None]) -> Captions:
    """The job's captions: committed ones, or written now on caption actors (`connect` first
    connects to Ray) and committed."""
    found = read_captions(store)
    if found is not None:
        return found[0]
    connect()
    plan = job.plan
    rows = _write_on_actors(job, [e.label for e in plan.manifest.entries])
    table = pa.Table.from_pylist(sorted(rows, key=lambda r: (r["label"], r["caption_id"])), schema=SCHEMA)
    data = table_bytes(table)
    store.put_bytes(CAPTIONS_FILE, data)  # not yet part of the job: only the marker makes it so
    marker = {"file": CAPTIONS_FILE, "rows": len(table), "sha256": hashlib.sha256(data).hexdigest(),
              "job_id": plan.job_id, "committed_at": time.time()}
    if not store.create_only(CAPTIONS_MARKER, json_bytes(marker)):
        log.info("captions were committed by another run first; using those")
    return read_captions(store)[0]


def _write_on_actors(job: JobContext, labels: list[int]) -> list[dict[str, Any]]:
    import ray  # ray only when captions are written

    from synthgen.run.caption_actor import CaptionActor  # the actor's module: with ray only
    from synthgen.run.pool import pool_plan  # ray: likewise

    pool = pool_plan(job, ray.cluster_resources())
    env = s3.forwarded_env()
    options = {"num_cpus": pool.cpus, "num_gpus": pool.gpus,
               "runtime_env": {"env_vars": env} if env else None}
    actor_class = ray.remote(CaptionActor)
    actors = [actor_class.options(**options).remote(job, max(1, int(pool.cpus)), s3.Credentials.from_env())
              for _ in range(min(pool.workers, len(labels)))]
    per_class = job.spec.classes.captions.per_class
    started, rows = time.monotonic(), []
    try:
        pending = {actors[i % len(actors)].write.remote(label): label for i, label in enumerate(labels)}
        with _bar(len(labels) * per_class) as advance:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                label = pending.pop(done[0])
                try:
                    rows += ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    raise JobFailed(f"captions: {str(cause).strip().splitlines()[-1]}") from None
                advance(per_class)
                log.debug("captions of class %d written", label)
        ray.get([a.release.remote() for a in actors])
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    seconds = time.monotonic() - started
    log.info("captions: %d written in %.1f s (%.1f captions/s)", len(rows), seconds,
             len(rows) / max(seconds, 1e-9))
    return rows


@contextlib.contextmanager
def _bar(total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over captions (log lines when stderr is no terminal)."""
    if not sys.stderr.isatty():
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            log.info("captions: %d/%d", done[0], total)

        yield advance
        return
    with Progress(transient=False) as progress:
        task = progress.add_task("captions", total=total)
        yield lambda n: progress.advance(task, n)
