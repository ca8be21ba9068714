"""Any other diffusers text-to-image pipeline (SDXL, SD3, PixArt, FLUX, ...), called as a whole."""

from __future__ import annotations

import inspect
from pathlib import Path

from synthgen.errors import UserError
from synthgen.models.configs import ModelInfo, read_json, scheduler_config, square, vae_scale_factor

# __call__ parameters that mark a pipeline as image-to-image, inpainting or control
IMAGE_INPUTS = {"image", "mask_image", "control_image"}


def read_info(path: Path, source: str, revision: str) -> ModelInfo:
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
        img2img=image_to_image_class(name) is not None,
    )


def image_to_image_class(name: str) -> str | None:
    """The image-to-image pipeline AutoPipelineForImage2Image pairs with a text-to-image one."""
    # diffusers only for this family, as in call_params
    from diffusers.pipelines.auto_pipeline import AUTO_IMAGE2IMAGE_PIPELINES_MAPPING, _get_task_class

    task_class = _get_task_class(AUTO_IMAGE2IMAGE_PIPELINES_MAPPING, name, throw_error_if_not_exist=False)
    return task_class.__name__ if task_class is not None else None


def call_params(name: str, source: str) -> set[str]:
    """The pipeline class's __call__ parameters; it must be a text-to-image pipeline."""
    # diffusers (and torch) only for this family: its call signature is what the plan checks.
    import diffusers

    try:
        pipeline_class = getattr(diffusers, name)
    except (AttributeError, ImportError):
        pipeline_class = None
    if pipeline_class is None or not callable(pipeline_class):
        raise UserError("model.source", source,
                        f"pipeline {name or '(unnamed)'} is not a diffusers pipeline this diffusers "
                        f"({diffusers.__version__}) knows; upgrade diffusers or check the model")
    params = set(inspect.signature(pipeline_class.__call__).parameters)
    if "prompt" not in params or params & IMAGE_INPUTS:
        raise UserError("model.source", source,
                        f"{name} is not a text-to-image pipeline; synthgen runs text-to-image, "
                        "class-conditional and unconditional models")
    return params
