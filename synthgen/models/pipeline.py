"""Any other diffusers text-to-image pipeline (SDXL, SD3, PixArt, FLUX, ...), called as a whole.

The pipeline runs its own loop, but every sample still owns its noise: the pipeline gets one
generator per sample (diffusers draws each sample's latents from its own generator), and the
scheduler is rebuilt by name from the model's scheduler config for every call. Samples with
and without a negative prompt go in separate calls, because pipelines treat a missing negative
prompt differently from "" (SDXL uses zeros), and an image must not depend on its batch mates.
"""

from __future__ import annotations

import inspect as pyinspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from synthgen.errors import UserError
from synthgen.models.base import Adapter, ModelInfo
from synthgen.models.components import read_json, scheduler_config, square, vae_scale_factor
from synthgen.plan import Sample
from synthgen.schedulers import build_scheduler, seed_brownian_noise
from synthgen.spec import SamplerSpec

# __call__ parameters that mark a pipeline as image-to-image, inpainting or control
IMAGE_INPUTS = {"image", "mask_image", "control_image"}


def inspect(path: Path, source: str, revision: str) -> ModelInfo:
    index = read_json(path / "model_index.json")
    name = index.get("_class_name", "")
    params = call_params(name, source)
    denoiser = "unet" if (path / "unet" / "config.json").is_file() else "transformer"
    config = read_json(path / denoiser / "config.json")
    factor = vae_scale_factor(read_json(path / "vae" / "config.json"))
    # Transformers patchify their latents: 2x2 patches (FLUX packs 2x2 without a patch_size).
    patch = max(2, config.get("patch_size") or 1) if denoiser == "transformer" else 1
    sizable = {"height", "width"} <= params
    return ModelInfo(
        family="pipeline",
        path=path,
        source=source,
        revision=revision,
        scheduler_config=scheduler_config(path),
        sample_size=square(config.get("sample_size"), 128) * factor,
        channels=config.get("in_channels", 4),
        guidable="guidance_scale" in params,
        prompted=True,
        negative_prompts="negative_prompt" in params,
        vae_scale_factor=factor,
        size_multiple=factor * patch if sizable else None,
        pipeline=name,
    )


def call_params(name: str, source: str) -> set[str]:
    """The pipeline class's __call__ parameters; it must be a text-to-image pipeline."""
    import diffusers

    try:
        pipeline_class = getattr(diffusers, name)
    except (AttributeError, ImportError):
        pipeline_class = None
    if pipeline_class is None or not callable(pipeline_class):
        raise UserError("model.source", source,
                        f"pipeline {name or '(unnamed)'} is not a diffusers pipeline this diffusers "
                        f"({diffusers.__version__}) knows; upgrade diffusers or check the model")
    params = set(pyinspect.signature(pipeline_class.__call__).parameters)
    if "prompt" not in params or params & IMAGE_INPUTS:
        raise UserError("model.source", source,
                        f"{name} is not a text-to-image pipeline; synthgen runs text-to-image, "
                        "class-conditional and unconditional models")
    return params


class PipelineAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        from diffusers import DiffusionPipeline
        from diffusers.utils import logging as diffusers_logging

        self.info, self.device, self.dtype = info, device, dtype
        diffusers_logging.disable_progress_bar()
        self.pipe = DiffusionPipeline.from_pretrained(info.path, dtype=dtype).to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.params = set(pyinspect.signature(self.pipe.__call__).parameters)

    def generate(self, samples: Sequence[Sample], sampler: SamplerSpec) -> np.ndarray:
        images: list[np.ndarray | None] = [None] * len(samples)
        for negative in (False, True):
            members = [i for i, s in enumerate(samples) if bool(s.negative_prompt) == negative]
            if members:
                pixels = self._call([samples[i] for i in members], sampler, negative)
                for i, image in zip(members, pixels, strict=True):
                    images[i] = image
        return np.stack(images)

    @torch.inference_mode()
    def _call(self, samples: Sequence[Sample], sampler: SamplerSpec, negative: bool) -> np.ndarray:
        generators = [torch.Generator("cpu").manual_seed(int(s.seed)) for s in samples]
        self.pipe.scheduler = build_scheduler(sampler.scheduler, self.info.scheduler_config)
        seed_brownian_noise(self.pipe.scheduler, generators)
        optional = {
            "guidance_scale": sampler.guidance_scale,
            "height": sampler.height,
            "width": sampler.width,
            "eta": sampler.eta,
            "negative_prompt": [s.negative_prompt for s in samples] if negative else None,
        }
        kwargs = {k: v for k, v in optional.items() if k in self.params and v is not None}
        out = self.pipe(prompt=[s.prompt or "" for s in samples], num_inference_steps=sampler.steps,
                        generator=generators, output_type="np", **kwargs)
        return (np.clip(out.images, 0.0, 1.0) * 255).round().astype(np.uint8)


ADAPTER = PipelineAdapter
