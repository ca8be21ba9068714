"""A Worker in this process, shaped like one of the job's actors on this machine.

For `synthgen plan --calibrate` (time a batch) and `synthgen sample` (regenerate one): no Ray,
the same Worker class, with the torch threads that the embedded local Ray's pool would give each
actor here (run/pool.py). Worker side: torch; the commands import this module only when they run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from synthgen.run.job import JobContext
from synthgen.run.pool import PoolPlan, pool_plan
from synthgen.run.worker import Worker


def local_pool(job: JobContext) -> PoolPlan:
    """The pool `synthgen run` would start on this machine with the embedded local Ray."""
    cluster = {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}
    return pool_plan(job, cluster)


@dataclass(frozen=True)
class LocalWorker:
    worker: Worker
    pool: PoolPlan  # the local pool it stands for
    threads: int  # its torch threads


def start_local(job: JobContext, threads: int | None = None) -> LocalWorker:
    """A loaded Worker with `threads` torch threads (default: what each local actor gets)."""
    pool = local_pool(job)
    threads = threads or max(1, int(pool.cpus))
    return LocalWorker(Worker(job, threads=threads), pool, threads)
