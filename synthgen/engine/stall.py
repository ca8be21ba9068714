"""Actors that the cluster cannot place: warned about, then given up on after a bounded wait.

Ray queues an actor whose resources no node has until one joins (an autoscaler adds it). Without
an autoscaler none ever joins, and the driver would wait for ever holding the job lock: so the
wait is bounded by `compute.placement_timeout_s`, then the job ends naming what it waited for.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import ray

from synthgen.engine.pool import PoolPlan
from synthgen.errors import JobFailed

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
