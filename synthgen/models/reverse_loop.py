"""The one reverse (denoising) loop, run by synthgen itself so that seeds stay per sample.

Every sample owns a generator seeded with its own seed: its initial noise and any noise a
stochastic scheduler adds come from it alone, so an image does not depend on which other
samples share its batch, on worker count, on retries or on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from synthgen.models.sample_values import guidance_of
from synthgen.models.schedulers import build_scheduler, step_kwargs

if TYPE_CHECKING:
    from synthgen.models.adapter import Adapter
    from synthgen.spec.job_spec import SamplerSpec
    from synthgen.spec.plan import Sample


def initial_noise(
    shape: tuple[int, ...], seeds: Sequence[int]
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """One CPU generator per sample (device-independent noise), and its first draw."""
    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
    noise = torch.stack([torch.randn(shape, generator=g) for g in generators])
    return noise, generators


@torch.inference_mode()
def reverse_loop(adapter: Adapter, samples: Sequence[Sample], sampler: SamplerSpec,
                 init: InitImages | None = None) -> np.ndarray:
    """Generate one batch of images, uint8 (N, H, W, C): `sampler.steps` for all, each sample
    with its own guidance scale; with `init`, variations of init images that all start at one
    step (Adapter.generate groups a batch by start step)."""
    scales = [guidance_of(s, sampler) for s in samples]
    guided = adapter.info.guidable and any(g != 1.0 for g in scales)

    # 1. A fresh scheduler from the model's own config, with the requested steps.
    scheduler = build_scheduler(sampler.scheduler, adapter.info.scheduler_config)
    scheduler.set_timesteps(sampler.steps, device=adapter.device)

    # 2. Initial noise, one generator per sample, scaled as the scheduler expects; the same
    #    generators then drive any noise the scheduler adds. With init images (img2img), the
    #    encoded images noised to their start step instead (models/reverse_loop.py).
    if init is None:
        noise, generators = initial_noise(adapter.latent_shape(sampler), [s.seed for s in samples])
        latents = noise.to(adapter.device, adapter.dtype) * scheduler.init_noise_sigma
        timesteps = scheduler.timesteps
    else:
        generators = [torch.Generator("cpu").manual_seed(int(s.seed)) for s in samples]
        latents, timesteps = noised_init(adapter, scheduler, init, generators)
    kwargs = step_kwargs(scheduler, generators, sampler.eta)

    # 3. Conditioning once per batch (unconditional rows first when guiding).
    cond = adapter.conditions(samples, guided)

    # 4. Denoise: predict, apply classifier-free guidance (one scale per row), step.
    scale = torch.tensor(scales, device=adapter.device, dtype=adapter.dtype)
    scale = scale.view(-1, *[1] * (latents.ndim - 1))
    for t in timesteps:
        model_in = torch.cat([latents] * 2) if guided else latents
        model_in = scheduler.scale_model_input(model_in, t)
        pred = adapter.predict(model_in, t, cond)
        if guided:
            uncond, conditional = pred.chunk(2)
            pred = uncond + scale * (conditional - uncond)
        latents = scheduler.step(pred, t, latents, **kwargs).prev_sample

    # 5. Decode to uint8 pixels.
    return adapter.decode(latents)


# Init images in the reverse loop (img2img), as diffusers' img2img pipelines do it.
#
# A sample's strength picks the step it starts at (diffusers' `get_timesteps`: of `steps` steps
# the last int(steps * strength) run; sample_values.start_step). Its init image is encoded
# (pixels as they are for a UNet, the VAE for latent models, drawing from its latent distribution
# with the sample's own generator), then noised to that step's timestep with noise from the same
# generator (`prepare_latents`). Start step 0 (strength 1) is plain generation: the init image is
# not used at all. A start past the last step (strength 0, or too few steps for it) runs no step:
# the encoded source comes back.
# Samples of a batch that start at different steps run as separate groups (Adapter.generate).
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
