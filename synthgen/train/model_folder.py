"""The trained model as a diffusers folder (DDPMPipeline layout) plus synthgen.json, and its
sample grid, drawn through the product's own loading path and reverse loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from PIL import Image

from synthgen.inputs.builtin import BUILTIN_DIGITS
from synthgen.models.registry import inspect_model, load_adapter
from synthgen.spec.job_spec import ModelSpec, SamplerSpec
from synthgen.spec.plan import Sample, sample_seed
from synthgen.train.config import DIGITS_LICENSE, TrainConfig, cli_command
from synthgen.train.data import LabeledImages

GRID_FILE = "samples.png"
GRID_BATCH = 64


def build_unet(config: TrainConfig, num_classes: int, channels: int, size: int) -> UNet2DModel:
    """A UNet without attention in the down/up path: at 8x8 convolutions carry the spatial work,
    and one attention layer in the 2x2 mid block is enough (keeps CPU sampling fast)."""
    levels = len(config.block_out_channels)
    return UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=config.layers_per_block,
        block_out_channels=config.block_out_channels,
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
        norm_num_groups=config.norm_num_groups,
        attention_head_dim=min(32, config.block_out_channels[-1]),
        num_class_embeds=num_classes + 1,
    )


def make_noise_scheduler(config: TrainConfig) -> DDPMScheduler:
    """The training schedule; saved so that every sampler derives its own via `from_config`.

    `trailing` spacing makes few-step samplers start at the last (pure-noise) timestep.
    """
    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
        timestep_spacing="trailing",
        clip_sample=True,
    )


def save_model(
    config: TrainConfig,
    ema: UNet2DModel,
    noise: DDPMScheduler,
    data: LabeledImages,
    total: int,
    timing: dict[str, float],
) -> Path:
    """DDPMPipeline layout (model_index.json, unet/, scheduler/) plus synthgen.json."""
    out = config.output
    ema = ema.to("cpu").eval()
    DDPMPipeline(unet=ema, scheduler=noise).save_pretrained(out, safe_serialization=True)
    meta = {
        "id2label": {str(i): name for i, name in enumerate(data.class_names)},
        "null_class": len(data.class_names),
        "license": config.license or _default_license(config),
        "value_range": [-1, 1],
        "sampler": {
            "scheduler": config.sample_scheduler,
            "steps": config.sample_steps,
            "guidance_scale": config.guidance_scale,
        },
        "training": {
            "command": cli_command(config),
            "steps": total,
            "data": data.description,
            "num_images": len(data),
            **timing,
            "torch": torch.__version__,
            "config": config.to_json(),
        },
    }
    (out / "synthgen.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _default_license(config: TrainConfig) -> str:
    return DIGITS_LICENSE if config.source == BUILTIN_DIGITS else "unknown"


def save_sample_grid(out: Path, class_names: list[str], config: TrainConfig, per_class: int = 10) -> Path:
    """One row per class (up to 20 rows), upscaled with nearest so 8x8 digits are visible.

    The saved folder is loaded as `model.source` would load it and sampled by the product's
    reverse loop, with the model's recommended sampler: each image's noise comes from its own
    seed, `sample_seed(config.seed, i)`, exactly as a job with that seed would draw sample i.
    """
    spec = ModelSpec(source=str(out), device=config.device)
    adapter = load_adapter(inspect_model(spec), spec)
    sampler = SamplerSpec(scheduler=config.sample_scheduler, steps=config.sample_steps,
                          guidance_scale=config.guidance_scale)
    rows = min(len(class_names), 20)
    samples = [Sample(sample_id=i, seed=sample_seed(config.seed, i), label=c, label_name=class_names[c],
                      prompt=None, template=None, negative_prompt=None, model_label=c)
               for i, c in enumerate(c for c in range(rows) for _ in range(per_class))]
    pixels = np.concatenate([adapter.generate(samples[i : i + GRID_BATCH], sampler)
                             for i in range(0, len(samples), GRID_BATCH)])
    _, h, w, c = pixels.shape
    grid = pixels.reshape(rows, per_class, h, w, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * h, per_class * w, c)
    image = Image.fromarray(grid[..., 0] if c == 1 else grid)
    scale = max(1, 32 // max(h, w))
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    path = out / GRID_FILE
    image.save(path)
    return path
