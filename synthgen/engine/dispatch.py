"""Which shard an actor takes next, when the jobs of a group use several models (a sweep over
generators): each actor loads each model once, so it finishes the shards of the model it holds
before it loads another (the executor, engine/executor.py, asks here).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from synthgen.engine.job import ShardAddress


def by_model(shards: list[ShardAddress], models: Mapping[str, str]) -> deque[ShardAddress]:
    """The shards grouped by model key (`models`: job key -> model key), models in the order of
    their first job, and in their own order within one model."""
    order = list(dict.fromkeys(models.values()))
    return deque(sorted(shards, key=lambda a: order.index(models[a.job])))


def next_shard(queue: deque[ShardAddress], models: Mapping[str, str], holds: Mapping[Any, str],
               actor: Any = None) -> ShardAddress | None:
    """The next shard for `actor` (None: one about to start): the first of the model it holds,
    else the first of a model no other actor holds (fewer loads in all), else the first."""
    held = holds.get(actor)
    others = {model for other, model in holds.items() if other is not actor}
    mine = (a for a in queue if models[a.job] == held)
    fresh = (a for a in queue if models[a.job] not in others)
    return next(mine, None) or next(fresh, None) or (queue[0] if queue else None)
