"""Loaded models kept by what defines them, so that the jobs of a group load theirs once.

Worker side (torch): a group actor (GroupActor in engine/actor.py) hands one cache to the Worker of each
job it runs; jobs whose model spec and resolved revision agree get the same loaded adapter.
"""

from __future__ import annotations

import time

from synthgen.models.adapter import Adapter
from synthgen.models.configs import ModelInfo
from synthgen.models.registry import load_adapter
from synthgen.spec.job_spec import ModelSpec


class ModelCache:
    """Adapters keyed by (revision, model spec minus storage options); counts the loads."""

    def __init__(self) -> None:
        self.adapters: dict[tuple[str | None, str], Adapter] = {}
        self.loads = 0
        self.load_s = 0.0

    def adapter(self, info: ModelInfo, model: ModelSpec) -> Adapter:
        key = (info.revision, model.model_dump_json(exclude={"storage_options"}))
        if key not in self.adapters:
            started = time.perf_counter()
            self.adapters[key] = load_adapter(info, model)
            self.loads += 1
            self.load_s += time.perf_counter() - started
        return self.adapters[key]
