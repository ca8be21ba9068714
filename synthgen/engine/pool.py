"""The shape of the actor pool (how many actors, what each reserves), and connecting to Ray."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ray
from ray._private import ray_constants
from ray._private.accelerators import get_accelerator_manager_for_resource
from ray._private.utils import get_num_cpus

from synthgen.engine.job import JobContext, JobGroup
from synthgen.errors import JobFailed, UserError
from synthgen.storage import s3

WORKER_BASE_BYTES = 1 << 30  # a CPU actor before its model: Ray, torch, diffusers (650 MiB measured)
WEIGHT_COPIES = 3  # the weights, and activations of the same order at the default batch size


@dataclass
class PoolPlan:
    """How many actors, what each reserves, and why (for the run log)."""

    workers: int
    cpus: float
    gpus: float
    why: str = ""


def pool_plan(job: JobContext | JobGroup, cluster: dict[str, float]) -> PoolPlan:
    """workers=auto: one actor per GPU (gpus_per_worker each); without GPUs, see cpu_workers.

    `model.device: cuda` asks for GPU actors even while the cluster has no GPU (an autoscaler
    at zero starts GPU nodes for them); `auto` uses GPUs only where the cluster has some.
    """
    compute, device = job.spec.compute, job.spec.model.device
    gpus = cluster.get("GPU", 0.0)
    on_gpu = device == "cuda" or (device == "auto" and gpus > 0)
    per_gpu = compute.gpus_per_worker if on_gpu else 0.0
    why = "compute.workers"
    if compute.workers != "auto":
        workers = compute.workers
    elif per_gpu:
        workers, why = max(1, int(gpus // per_gpu)), "workers auto: one per GPU"
    else:
        workers, why = cpu_workers(job, cluster)
    if compute.cpus_per_worker != "auto":
        cpus = float(compute.cpus_per_worker)
    elif per_gpu:
        cpus = 1.0
    else:
        cpus = float(max(1, int(cluster.get("CPU", 1.0)) // workers))
    return PoolPlan(workers=workers, cpus=cpus, gpus=per_gpu, why=why)


def refuse_unplaceable(job: JobContext, address: str | None) -> None:
    """On the embedded one-node Ray (no address) no node ever joins: an actor asking for more
    CPUs or GPUs than this machine has would wait for ever, holding the job lock. Refused here,
    before the lock is taken or anything written; a cluster's wait is bounded instead (stall.py)."""
    if address or os.environ.get("RAY_ADDRESS") or ray.is_initialized():
        return
    have = embedded_resources()
    pool = pool_plan(job, have)
    compute, device = job.spec.compute, job.spec.model.device
    if pool.cpus > have["CPU"]:
        raise UserError("compute.cpus_per_worker", compute.cpus_per_worker,
                        f"this machine has {have['CPU']:g} cores and the embedded Ray (no --address) "
                        "never gets more; ask for at most that, or give --address of a cluster")
    if pool.gpus > have["GPU"]:
        field, value = (("model.device", device) if device == "cuda" and not have["GPU"]
                        else ("compute.gpus_per_worker", compute.gpus_per_worker))
        raise UserError(field, value, f"this machine has {have['GPU']:g} GPU(s) Ray can use and the "
                        "embedded Ray (no --address) never gets more; use model.device auto or cpu, "
                        "or give --address of a cluster with GPUs")


def embedded_resources() -> dict[str, float]:
    """The CPUs and GPUs an embedded Ray would find here, counted as Ray counts them (container
    CPU limits, CUDA_VISIBLE_DEVICES), without starting it."""
    gpu = get_accelerator_manager_for_resource("GPU")
    if gpu is None:  # a Ray without NVIDIA support: no GPU it could use
        return {"CPU": float(get_num_cpus()), "GPU": 0.0}
    found = gpu.get_current_node_num_accelerators()
    visible = gpu.get_current_process_visible_accelerator_ids()
    gpus = found if visible is None else min(found, len(visible))
    return {"CPU": float(get_num_cpus()), "GPU": float(gpus)}


def cpu_workers(job: JobContext | JobGroup, cluster: dict[str, float]) -> tuple[int, str]:
    """workers=auto without GPUs: one single-threaded actor per core (or per cpus_per_worker
    cores), as many as memory holds. Independent processes never wait on each other, while one
    process's threads meet at a barrier after every op: on the benchmark job two 1-thread actors
    made 1.26x the images of one 2-thread actor while generating (docs/benchmarks.md).
    One thread per actor also makes the bits the same on any number of cores
    (docs/guides/precision-devices.md). Where the weights' size is unknown (a hub model not yet
    on this machine): one actor on all cores."""
    threads = job.spec.compute.cpus_per_worker
    cores = max(1, int(cluster.get("CPU", 1.0)))
    by_cores = max(1, cores // (threads if isinstance(threads, int) else 1))
    if job.model_bytes is None:
        return 1, "workers auto: one CPU actor (the model's size is not known here)"
    per_worker = WORKER_BASE_BYTES + WEIGHT_COPIES * job.model_bytes
    by_memory = max(1, int(cluster.get("memory", 0.0) // per_worker))
    workers = min(by_cores, by_memory)
    return workers, (f"workers auto: {workers} CPU actor(s), one per "
                     f"{threads if isinstance(threads, int) else 1} core(s) of {cores}"
                     + (f", as many as {cluster.get('memory', 0.0) / 2**30:.0f} GiB hold"
                        if by_memory < by_cores else ""))


# Ray starts its workers at niceness 15 (its `worker_niceness`), below everything else on the
# machine: on a 2-core machine each wake-up of the driver, the raylet or another user's process
# preempted one of torch's two threads and stalled the other at its next barrier. The actors are
# the work: they run at the default priority (ACTOR_ENV below, on any cluster).
# Every wake-up of another process stalls torch the same way, well beyond its own CPU time, so
# the embedded Ray also leaves out what a one-machine job never reads: the idle workers it
# prestarts when the driver connects (each wakes 100 times a second; the actors start their
# own), its metrics and its event-loop statistics. Beside an idle default Ray the in-process
# Worker's shards took 13% longer; beside this one, as long as alone (docs/benchmarks.md).
RAY_SYSTEM_CONFIG = {"worker_niceness": 0, "prestart_worker_first_driver": False,
                     "enable_metrics_collection": False, "event_stats": False}

# A cluster's `ray start` leaves `worker_niceness` at 15 unless it was started with
# RAY_worker_niceness=0. A worker process reads that setting from its own environment as it
# starts, so the actors carry it in their runtime_env (as Ray's job supervisor does for itself):
# they run at the default priority however the cluster was started, and no recipe needs it.
ACTOR_ENV = {ray_constants.RAY_WORKER_NICENESS: "0"}


def actor_runtime_env() -> dict[str, Any]:
    """The runtime_env of synthgen's actors: the default priority, the driver's plain S3 settings."""
    return {"env_vars": {**s3.forwarded_env(), **ACTOR_ENV}}


def connect_ray(address: str | None) -> bool:
    """Embedded local Ray by default; an existing cluster with an address or RAY_ADDRESS.
    True when this call started an embedded Ray (then the driver shuts it down)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address is None:
        # "local": a private cluster even if `ray start` left one running on this machine;
        # no dashboard, and all its traffic on loopback.
        address = "local"
        kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1",
                      _system_config=RAY_SYSTEM_CONFIG)
    ray.init(address=address, **kwargs)
    if address == "local":
        _stop_autoscaler()
    return address == "local"


def _stop_autoscaler() -> None:
    """The embedded Ray is one node that never scales, yet `ray.init` starts the autoscaler's
    monitor (only `ray start --no-monitor` leaves it out). At shutdown the monitor outlasts the
    second Ray gives it after SIGTERM: every run ended a second late (1.38 s to shut an idle Ray
    down with it, 0.11 s without). Stopping it at once makes the head `--no-monitor` makes."""
    node = getattr(ray._private.worker, "_global_node", None)  # the node ray.init started here
    if node is None:
        return
    for info in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
        info.process.kill()
        info.process.wait()


@contextmanager
def stopping_ray(started: bool) -> Iterator[None]:
    """Shut the embedded Ray this driver started down while the body runs (finalize needs no
    Ray): its processes take a second or two to exit, and Ray's exit hook would first sleep
    half a second more. A Ray the driver did not start is left running."""
    stopper = threading.Thread(target=ray.shutdown, name="ray-shutdown") if started else None
    if stopper is not None:
        stopper.start()
    try:
        yield
    finally:
        if stopper is not None:
            stopper.join()


# Actors that the cluster cannot place: warned about, then given up on after a bounded wait.
#
# Ray queues an actor whose resources no node has until one joins (an autoscaler adds it). Without
# an autoscaler none ever joins, and the driver would wait for ever holding the job lock: so the
# wait is bounded by `compute.placement_timeout_s`, then the job ends naming what it waited for.
log = logging.getLogger("synthgen.executor")

STALL_WARN_S = 60.0  # warn when no actor could start for this long, and again as often


@dataclass
class StallWatch:
    """Tracks how long every actor of the pool has waited to be placed."""

    pool: PoolPlan
    timeout_s: float
    since: float | None = None
    warned_at: float | None = None

    def check(self, waiting: int) -> None:
        """`waiting`: actors still starting while none works (0 when some actor works)."""
        now = time.monotonic()
        if not waiting:
            self.since = self.warned_at = None
            return
        self.since = self.since or now
        waited = now - self.since
        if waited < min(STALL_WARN_S, self.timeout_s):
            return
        have = ray.cluster_resources()
        if all(have.get(kind, 0.0) >= need * waiting
               for kind, need in (("CPU", self.pool.cpus), ("GPU", self.pool.gpus))):
            return  # they fit: they are loading their model
        what = (f"{waiting} actor(s) of {self.pool.cpus:g} CPU and {self.pool.gpus:g} GPU each; "
                f"the cluster has {have.get('CPU', 0.0):g} CPU and {have.get('GPU', 0.0):g} GPU")
        if waited >= self.timeout_s:
            raise JobFailed(f"waited {self.timeout_s:g} s (compute.placement_timeout_s) for the "
                            f"cluster to place {what}. Add nodes, lower compute.workers, "
                            "compute.cpus_per_worker or compute.gpus_per_worker, or let "
                            "model.device be auto; then resume")
        if self.warned_at is None or now - self.warned_at >= STALL_WARN_S:
            self.warned_at = now
            log.warning("%s wait for placement; an autoscaler adds nodes for them. Without one, "
                        "lower compute.workers or compute.gpus_per_worker, or let model.device be "
                        "auto (given up after compute.placement_timeout_s = %g s)", what, self.timeout_s)
