"""Any other diffusers text-to-image pipeline, loaded and called as a whole.

The pipeline runs its own loop, but every sample still owns its noise: the pipeline gets one
generator per sample (diffusers draws each sample's latents from its own generator), and the
scheduler is rebuilt by name from the model's scheduler config for every call. Samples with
and without a negative prompt go in separate calls, because pipelines treat a missing negative
prompt differently from "" (SDXL uses zeros), and an image must not depend on its batch mates.
A pipeline takes one guidance scale and one number of steps per call, so samples that drew
different ones (sampler ranges) go in separate calls too: synthgen's own loop (sd, unet, dit)
applies each row's guidance in one call instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import logging as diffusers_logging

from synthgen.models.adapter import Adapter
from synthgen.models.info import ModelInfo
from synthgen.models.sample_values import grouped, guidance_of, steps_of
from synthgen.models.schedulers import build_scheduler, seed_brownian_noise
from synthgen.spec.job_spec import SamplerSpec
from synthgen.spec.plan import Sample


class PipelineAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info, self.device, self.dtype = info, device, dtype
        diffusers_logging.disable_progress_bar()
        self.pipe = DiffusionPipeline.from_pretrained(info.path, dtype=dtype).to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.params = set(inspect.signature(self.pipe.__call__).parameters)

    def generate(self, samples: Sequence[Sample], sampler: SamplerSpec) -> np.ndarray:
        def key(s: Sample) -> tuple[bool, float, int]:
            return bool(s.negative_prompt), guidance_of(s, sampler), steps_of(s, sampler)

        return grouped(samples, key, lambda group: self._call(group, sampler))

    @torch.inference_mode()
    def _call(self, samples: Sequence[Sample], sampler: SamplerSpec) -> np.ndarray:
        negative = bool(samples[0].negative_prompt)
        generators = [torch.Generator("cpu").manual_seed(int(s.seed)) for s in samples]
        self.pipe.scheduler = build_scheduler(sampler.scheduler, self.info.scheduler_config)
        seed_brownian_noise(self.pipe.scheduler, generators)
        optional = {
            "guidance_scale": guidance_of(samples[0], sampler),
            "height": sampler.height,
            "width": sampler.width,
            "eta": sampler.eta,
            "negative_prompt": [s.negative_prompt for s in samples] if negative else None,
        }
        kwargs = {k: v for k, v in optional.items() if k in self.params and v is not None}
        out = self.pipe(prompt=[s.prompt or "" for s in samples], generator=generators, output_type="np",
                        num_inference_steps=steps_of(samples[0], sampler), **kwargs)
        return (np.clip(out.images, 0.0, 1.0) * 255).round().astype(np.uint8)


ADAPTER = PipelineAdapter
