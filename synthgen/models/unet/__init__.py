"""Pixel-space diffusers `UNet2DModel`s, unconditional or class-conditional.

Works with a DDPMPipeline-style folder (`unet/`, `scheduler/`) or a UNet saved alone. A
class-conditional model guides with its null class, named in `synthgen.json` beside it.
"""

from __future__ import annotations

from pathlib import Path

from synthgen.models.configs import ModelInfo, read_json

# The noise schedule diffusers' DDPMPipeline assumes when a folder has no scheduler config.
DEFAULT_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000,
                     "beta_schedule": "linear", "prediction_type": "epsilon"}


def read_info(path: Path, source: str, revision: str) -> ModelInfo:
    unet_dir = path / "unet" if (path / "unet" / "config.json").is_file() else path
    config = read_json(unet_dir / "config.json")
    scheduler = read_json(path / "scheduler" / "scheduler_config.json")
    extra = read_json(path / "synthgen.json")
    size = config.get("sample_size") or 64
    id2label = {int(k): v for k, v in extra.get("id2label", {}).items()}
    return ModelInfo(
        family="unet",
        path=unet_dir,
        source=source,
        revision=revision,
        scheduler_config=scheduler or DEFAULT_SCHEDULER,
        sample_size=size if isinstance(size, int) else size[0],
        channels=config.get("in_channels", 3),
        num_class_embeds=config.get("num_class_embeds"),
        null_class=extra.get("null_class"),
        guidable=config.get("num_class_embeds") is not None and extra.get("null_class") is not None,
        id2label=id2label,
        license=extra.get("license"),
        # With id2label, a class name the model does not know is a mistake, not index 0, 1, ...
        label_fallback=not id2label,
    )
