"""Schedulers built by name (spec/scheduler_names.py) and bound to each sample's own generator."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import diffusers
import torch

from synthgen.spec.scheduler_names import SCHEDULERS


def build_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A fresh scheduler of the named kind, configured from the model's scheduler config."""
    class_name, overrides = SCHEDULERS[name]
    scheduler_class = getattr(diffusers, class_name)
    return scheduler_class.from_config({**config, **overrides})


def step_kwargs(scheduler: Any, generators: Sequence[Any], eta: float) -> dict[str, Any]:
    """Bind each sample's generator to the scheduler's randomness; the kwargs for `step`.

    Stochastic steps take the list of per-sample generators. The SDE solver draws its noise
    from Brownian trees instead: it gets one tree per sample, seeded from that sample's generator.
    """
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict[str, Any] = {}
    if "generator" in params:
        kwargs["generator"] = list(generators)
    if "eta" in params:
        kwargs["eta"] = eta
    seed_brownian_noise(scheduler, generators)
    return kwargs


def seed_brownian_noise(scheduler: Any, generators: Sequence[Any]) -> None:
    """An SDE solver's Brownian noise, one tree per sample, seeded from the sample's generator.

    diffusers' DPMSolverSDEScheduler otherwise seeds one tree for the whole batch, at random.
    """
    if hasattr(scheduler, "noise_sampler_seed"):
        scheduler.noise_sampler_seed = [int(torch.randint(0, 2**62, (), generator=g)) for g in generators]
        scheduler.noise_sampler = None
