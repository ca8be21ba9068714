"""The scheduler registry: the names users write in specs, mapped to diffusers class names.

Data only (no diffusers import): the spec validates names with it, and models/schedulers.py
builds each scheduler from the model's own config, so the noise schedule the model was trained
with (betas, prediction type) carries over whatever the sampler.
"""

from __future__ import annotations

import importlib.util
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
