"""Scheduler names users write in specs, mapped to diffusers scheduler classes.

Each scheduler is built from the model's own scheduler config, so the noise schedule the
model was trained with (betas, prediction type) carries over whatever the sampler.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Sequence
from typing import Any

# name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddpm": ("DDPMScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpm++-sde": ("DPMSolverSDEScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "lcm": ("LCMScheduler", {}),
    "flow-euler": ("FlowMatchEulerDiscreteScheduler", {}),
}

# Schedulers for flow-matching models (SD3, FLUX); every other name is for noise-prediction models.
FLOW_SCHEDULERS = {"flow-euler"}

# name -> the extra package its diffusers class needs
REQUIRES = {"dpm++-sde": "torchsde"}


def is_flow_config(config: dict[str, Any]) -> bool:
    """A flow-matching model: its own scheduler is a FlowMatch* one."""
    return str(config.get("_class_name", "")).startswith("FlowMatch")


def scheduler_problem(name: str, config: dict[str, Any] | None) -> str | None:
    """Why this scheduler cannot run here (a missing package, the wrong model kind), or None."""
    package = REQUIRES.get(name)
    if package and importlib.util.find_spec(package) is None:
        return f"needs the {package} package, which is not installed: pip install {package}"
    if config is None:
        return None
    if name in FLOW_SCHEDULERS and not is_flow_config(config):
        return ("is for flow-matching models (SD3, FLUX); this model predicts noise: use one of "
                + ", ".join(n for n in SCHEDULERS if n not in FLOW_SCHEDULERS))
    if name not in FLOW_SCHEDULERS and is_flow_config(config):
        return "this is a flow-matching model; use " + " or ".join(sorted(FLOW_SCHEDULERS))
    return None


def build_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A fresh scheduler of the named kind, configured from the model's scheduler config."""
    import diffusers

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
    import torch

    if hasattr(scheduler, "noise_sampler_seed"):
        scheduler.noise_sampler_seed = [int(torch.randint(0, 2**62, (), generator=g)) for g in generators]
        scheduler.noise_sampler = None
