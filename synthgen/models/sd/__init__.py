"""Stable Diffusion 1.x/2.x (UNet2DConditionModel + AutoencoderKL + CLIP text encoder)."""

from __future__ import annotations

from pathlib import Path

from synthgen.models.configs import (
    ModelInfo,
    pipeline_index,
    read_json,
    scheduler_config,
    square,
    vae_scale_factor,
)

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer")


def read_info(path: Path, source: str, revision: str) -> ModelInfo:
    index = pipeline_index(path, source, COMPONENTS)
    unet = read_json(path / "unet" / "config.json")
    factor = vae_scale_factor(read_json(path / "vae" / "config.json"))
    return ModelInfo(
        family="sd",
        path=path,
        source=source,
        revision=revision,
        scheduler_config=scheduler_config(path),
        sample_size=square(unet.get("sample_size"), 64) * factor,
        channels=unet.get("in_channels", 4),
        guidable=True,
        prompted=True,
        negative_prompts=True,
        vae_scale_factor=factor,
        size_multiple=factor,
        pipeline=index.get("_class_name"),
    )
