"""Any other diffusers text-to-image pipeline, loaded and called as a whole.

The pipeline runs its own loop, but every sample still owns its noise: the pipeline gets one
generator per sample (diffusers draws each sample's latents from its own generator), and the
scheduler is rebuilt by name from the model's scheduler config for every call. Samples with
and without a negative prompt go in separate calls, because pipelines treat a missing negative
prompt differently from "" (SDXL uses zeros), and an image must not depend on its batch mates.
A pipeline takes one guidance scale and one number of steps per call, so samples that drew
different ones (sampler ranges) go in separate calls too: synthgen's own loop (sd, unet, dit)
applies each row's guidance in one call instead.

Init images (img2img) go through the pipeline's image-to-image twin, AutoPipelineForImage2Image
over the same components, one call per start step (models/reverse_loop.py): strength 1 is plain
generation, and a strength that leaves no step returns the source image.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diffusers import AutoPipelineForImage2Image, DiffusionPipeline
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from synthgen.models.adapter import Adapter
from synthgen.models.components import to_uint8
from synthgen.models.configs import ModelInfo
from synthgen.models.sample_values import grouped, guidance_of, start_of, steps_of
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
        negative prompt, by guidance scale and steps and, with init images, by start step."""
        def key(s: Sample) -> tuple[bool, float, int, int]:
            return (bool(s.negative_prompt), guidance_of(s, sampler), steps_of(s, sampler),
                    start_of(s, sampler))

        def call(members: list[int]) -> np.ndarray:
            group = [samples[i] for i in members]
            start = start_of(group[0], sampler)
            return self._group(group, sampler, None if init is None or start == 0 else (init[members], start))

        return grouped(samples, key, call)

    def _group(self, samples: list[Sample], sampler: SamplerSpec,
               init: tuple[np.ndarray, int] | None) -> np.ndarray:
        """Plain generation, or img2img of the group's init images from their start step."""
        if init is None:
            return self._call(samples, sampler)
        pixels, start = init
        if start >= steps_of(samples[0], sampler):  # no step left to run: the source itself
            return to_uint8(torch.from_numpy(pixels))
        if self.img2img is None:
            self.img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)
            self.img2img.set_progress_bar_config(disable=True)
        images = [Image.fromarray(a) for a in to_uint8(torch.from_numpy(pixels))]  # RGB: init_pixels
        strength = samples[0].strength  # any of the group's: all start at this step
        assert strength is not None  # an init group's samples all have one
        return self._call(samples, sampler, {"image": images, "strength": float(strength)})

    @torch.inference_mode()
    def _call(self, samples: Sequence[Sample], sampler: SamplerSpec,
              image: dict[str, Any] | None = None) -> np.ndarray:
        """One pipeline call, one generator per sample; `image`: the img2img pipeline's image and
        strength (every sample of the call starts at the same step)."""
        negative = bool(samples[0].negative_prompt)
        pipe = self.pipe if image is None else self.img2img
        assert pipe is not None  # _group loads the img2img pipeline before its first img2img call
        params = _call_params(pipe.__class__)
        generators = [torch.Generator("cpu").manual_seed(int(s.seed)) for s in samples]
        pipe.scheduler = build_scheduler(sampler.scheduler, self.info.scheduler_config)
        seed_brownian_noise(pipe.scheduler, generators)
        optional = {
            "guidance_scale": guidance_of(samples[0], sampler),
            "height": sampler.height,
            "width": sampler.width,
            "eta": sampler.eta,
            "negative_prompt": [s.negative_prompt for s in samples] if negative else None,
        }
        kwargs = {k: v for k, v in optional.items() if k in params and v is not None}
        out = pipe(prompt=[s.prompt or "" for s in samples], generator=generators, output_type="np",
                   num_inference_steps=steps_of(samples[0], sampler), **kwargs, **(image or {}))
        return (np.clip(out.images, 0.0, 1.0) * 255).round().astype(np.uint8)



@functools.cache
def _call_params(pipeline_class: type) -> frozenset[str]:
    """What a pipeline class's call takes (the text-to-image one, or its img2img twin): read once."""
    return frozenset(inspect.signature(pipeline_class.__call__).parameters)


ADAPTER = PipelineAdapter
