"""Scheduler names users write in specs, mapped to diffusers scheduler classes.

Each scheduler is built from the model's own scheduler config, so the noise schedule the
model was trained with (betas, prediction type) carries over whatever the sampler.
"""

from __future__ import annotations

from typing import Any

# name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddpm": ("DDPMScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}


def build_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A fresh scheduler of the named kind, configured from the model's scheduler config."""
    import diffusers

    class_name, overrides = SCHEDULERS[name]
    scheduler_class = getattr(diffusers, class_name)
    return scheduler_class.from_config({**config, **overrides})
