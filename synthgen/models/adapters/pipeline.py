"""Any other diffusers text-to-image pipeline, loaded and called as a whole.

The pipeline runs its own loop, but every sample still owns its noise: the pipeline gets one
generator per sample (diffusers draws each sample's latents from its own generator), and the
scheduler is rebuilt by name from the model's scheduler config for every call. Samples with
and without a negative prompt go in separate calls, because pipelines treat a missing negative
prompt differently from "" (SDXL uses zeros), and an image must not depend on its batch mates.

Init images (img2img) go through the pipeline's image-to-image twin, AutoPipelineForImage2Image
over the same components, one call per start step (models/img2img.py): strength 1 is plain
generation, and a strength that leaves no step returns the source image.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diffusers import AutoPipelineForImage2Image, DiffusionPipeline
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from synthgen.models.adapter import Adapter
from synthgen.models.adapters.pixels import to_uint8
from synthgen.models.img2img import start_step
from synthgen.models.info import ModelInfo
from synthgen.models.schedulers import build_scheduler, seed_brownian_noise
from synthgen.spec.job_spec import SamplerSpec
from synthgen.spec.plan import Sample


class PipelineAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info, self.device, self.dtype = info, device, dtype
        diffusers_logging.disable_progress_bar()
        self.pipe = DiffusionPipeline.from_pretrained(info.path, dtype=dtype).to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.img2img: DiffusionPipeline | None = None  # built over the same components when needed

    def generate(self, samples: Sequence[Sample], sampler: SamplerSpec,
                 init: np.ndarray | None = None) -> np.ndarray:
        """One call per group of samples that a pipeline must see apart: with and without a
        negative prompt and, with init images, by start step."""
        starts = [0 if init is None else start_step(sampler.steps, float(s.strength)) for s in samples]
        images: list[np.ndarray | None] = [None] * len(samples)
        keys = [(bool(s.negative_prompt), start) for s, start in zip(samples, starts, strict=True)]
        for key in sorted(set(keys)):
            members = [i for i, k in enumerate(keys) if k == key]
            pixels = self._group([samples[i] for i in members], sampler, key[0],
                                 None if key[1] == 0 else (init[members], key[1]))
            for i, image in zip(members, pixels, strict=True):
                images[i] = image
        return np.stack(images)

    def _group(self, samples: list[Sample], sampler: SamplerSpec, negative: bool,
               init: tuple[np.ndarray, int] | None) -> np.ndarray:
        if init is None:
            return self._call(samples, sampler, negative)
        pixels, start = init
        if start >= sampler.steps:  # no step left to run: the source itself
            return to_uint8(torch.from_numpy(pixels))
        if self.img2img is None:
            self.img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)
            self.img2img.set_progress_bar_config(disable=True)
        images = [Image.fromarray(a) for a in to_uint8(torch.from_numpy(pixels))]  # RGB: init_pixels
        strength = float(samples[0].strength)  # any of the group's: all start at this step
        return self._call(samples, sampler, negative, {"image": images, "strength": strength})

    @torch.inference_mode()
    def _call(self, samples: Sequence[Sample], sampler: SamplerSpec, negative: bool,
              image: dict[str, Any] | None = None) -> np.ndarray:
        """One pipeline call, one generator per sample; `image`: the img2img pipeline's image and
        strength (every sample of the call starts at the same step)."""
        pipe = self.pipe if image is None else self.img2img
        params = set(inspect.signature(pipe.__call__).parameters)
        generators = [torch.Generator("cpu").manual_seed(int(s.seed)) for s in samples]
        pipe.scheduler = build_scheduler(sampler.scheduler, self.info.scheduler_config)
        seed_brownian_noise(pipe.scheduler, generators)
        optional = {
            "guidance_scale": sampler.guidance_scale,
            "height": sampler.height,
            "width": sampler.width,
            "eta": sampler.eta,
            "negative_prompt": [s.negative_prompt for s in samples] if negative else None,
        }
        kwargs = {k: v for k, v in optional.items() if k in params and v is not None}
        out = pipe(prompt=[s.prompt or "" for s in samples], num_inference_steps=sampler.steps,
                   generator=generators, output_type="np", **kwargs, **(image or {}))
        return (np.clip(out.images, 0.0, 1.0) * 255).round().astype(np.uint8)


ADAPTER = PipelineAdapter
