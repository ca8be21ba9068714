"""The acceptance model: a class-conditional UNet2DModel synthgen has never seen, random weights.

A DDPMPipeline folder (unet/ + scheduler/), 16x16 RGB, three classes, no null class (so the job
runs unguided at guidance 1.0). Architecture: block_out_channels (32, 64, 64), layers_per_block 1,
plain down/up blocks with the default attention in the middle block: 1.1 M parameters.
"""

from __future__ import annotations

from pathlib import Path

ARCHITECTURE = {
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D",) * 3,
    "up_block_types": ("UpBlock2D",) * 3,
}


def build_model(out: Path, classes: int = 3, size: int = 16) -> Path:
    """Save the model as `DDPMPipeline.save_pretrained` does; the same weights every time."""
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=size, in_channels=3, out_channels=3, num_class_embeds=classes,
                       **ARCHITECTURE)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(out)
    return out


def describe() -> str:
    arch = ARCHITECTURE
    return (f"UNet2DModel, block_out_channels {arch['block_out_channels']}, layers_per_block "
            f"{arch['layers_per_block']}, attention in the mid block only")
