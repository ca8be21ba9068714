"""Tiny diffusers models with random weights, saved the way users save theirs."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def class_unet(out: Path, classes: tuple[str, ...] = ("a", "b", "c"), size: int = 8) -> Path:
    """A class-conditional UNet2DModel in a DDPMPipeline folder, with a null class for CFG."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=size, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
        num_class_embeds=len(classes) + 1,
    )
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100)).save_pretrained(out)
    extra = {"null_class": len(classes), "id2label": {str(i): n for i, n in enumerate(classes)}}
    (out / "synthgen.json").write_text(json.dumps(extra))
    return out


def plain_unet(out: Path, size: int = 8) -> Path:
    """An unconditional RGB UNet2DModel saved alone (config.json + weights, no pipeline)."""
    from diffusers import UNet2DModel

    torch.manual_seed(1)
    unet = UNet2DModel(
        sample_size=size, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    )
    unet.save_pretrained(out)
    return out
