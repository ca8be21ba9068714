"""Init images in the reverse loop (img2img), as diffusers' img2img pipelines do it.

A sample's strength picks the step it starts at (diffusers' `get_timesteps`: of `steps` steps
the last int(steps * strength) run; sample_values.start_step). Its init image is encoded
(pixels as they are for a UNet, the VAE for latent models, drawing from its latent distribution
with the sample's own generator), then noised to that step's timestep with noise from the same
generator (`prepare_latents`). Start step 0 (strength 1) is plain generation: the init image is
not used at all. A start past the last step (strength 0, or too few steps for it) runs no step:
the encoded source comes back.
Samples of a batch that start at different steps run as separate groups (Adapter.generate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from synthgen.models.adapter import Adapter


@dataclass(frozen=True)
class InitImages:
    """A group's init images, float32 (N, C, H, W) in [-1, 1], and the step they start at."""

    pixels: np.ndarray
    start: int


def noised_init(adapter: Adapter, scheduler: Any, init: InitImages,
                generators: Sequence[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents at the start step, the timesteps left to run), one generator per sample."""
    begin = init.start * scheduler.order
    timesteps = scheduler.timesteps[begin:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    latents = adapter.encode(torch.from_numpy(init.pixels), generators)
    if len(timesteps) == 0:
        return latents, timesteps
    noise = torch.stack([torch.randn(latents.shape[1:], generator=g) for g in generators])
    noise = noise.to(latents.device, latents.dtype)
    return scheduler.add_noise(latents, noise, timesteps[:1].repeat(len(generators))), timesteps
