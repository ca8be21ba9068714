"""The shape of the actor pool (how many actors, what each reserves), and connecting to Ray."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import ray

from synthgen.run.job import JobContext


@dataclass
class PoolPlan:
    """How many actors, and what each reserves."""

    workers: int
    cpus: float
    gpus: float


def pool_plan(job: JobContext, cluster: dict[str, float]) -> PoolPlan:
    """workers=auto: one actor per GPU (gpus_per_worker each), or one CPU actor without GPUs.

    `model.device: cuda` asks for GPU actors even while the cluster has no GPU (an autoscaler
    at zero starts GPU nodes for them); `auto` uses GPUs only where the cluster has some.
    """
    compute, device = job.spec.compute, job.spec.model.device
    gpus = cluster.get("GPU", 0.0)
    on_gpu = device == "cuda" or (device == "auto" and gpus > 0)
    per_gpu = compute.gpus_per_worker if on_gpu else 0.0
    if compute.workers == "auto":
        workers = max(1, int(gpus // per_gpu)) if per_gpu else 1
    else:
        workers = compute.workers
    if compute.cpus_per_worker != "auto":
        cpus = float(compute.cpus_per_worker)
    elif per_gpu:
        cpus = 1.0
    else:
        cpus = float(max(1, int(cluster.get("CPU", 1.0)) // workers))
    return PoolPlan(workers=workers, cpus=cpus, gpus=per_gpu)


def connect_ray(address: str | None) -> None:
    """Embedded local Ray by default; an existing cluster with an address or RAY_ADDRESS."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address is None:
        # "local": a private cluster even if `ray start` left one running on this machine;
        # no dashboard, and all its traffic on loopback.
        address = "local"
        kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1")
    ray.init(address=address, **kwargs)
