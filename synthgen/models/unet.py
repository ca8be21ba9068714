"""Pixel-space diffusers `UNet2DModel`s, unconditional or class-conditional.

Works with a DDPMPipeline-style folder (`unet/`, `scheduler/`) or a UNet saved alone. A
class-conditional model guides with its null class, named in `synthgen.json` beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthgen.models.base import Adapter, ModelInfo, to_uint8
from synthgen.plan import Sample
from synthgen.spec import SamplerSpec

if TYPE_CHECKING:  # torch loads with the adapter, not when the driver inspects a model
    import torch

# The noise schedule diffusers' DDPMPipeline assumes when a folder has no scheduler config.
DEFAULT_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000,
                     "beta_schedule": "linear", "prediction_type": "epsilon"}


def inspect(path: Path, source: str, revision: str) -> ModelInfo:
    unet_dir = path / "unet" if (path / "unet" / "config.json").is_file() else path
    config = json.loads((unet_dir / "config.json").read_text())
    scheduler_file = path / "scheduler" / "scheduler_config.json"
    scheduler = json.loads(scheduler_file.read_text()) if scheduler_file.is_file() else {}
    extra_file = path / "synthgen.json"
    extra = json.loads(extra_file.read_text()) if extra_file.is_file() else {}
    size = config.get("sample_size") or 64
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
        id2label={int(k): v for k, v in extra.get("id2label", {}).items()},
        license=extra.get("license"),
    )


class UNetAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        from diffusers import UNet2DModel

        self.info, self.device, self.dtype = info, device, dtype
        self.unet = UNet2DModel.from_pretrained(info.path, torch_dtype=dtype).to(device).eval()

    def latent_shape(self, sampler: SamplerSpec) -> tuple[int, int, int]:
        return (self.info.channels, self.info.sample_size, self.info.sample_size)

    def conditions(self, samples: Sequence[Sample], guided: bool) -> torch.Tensor | None:
        if not self.info.class_conditional:
            return None
        ids = [self.info.model_label(s.model_label, s.label_name, s.label) for s in samples]
        if guided:
            ids = [self.info.null_class] * len(samples) + ids
        import torch

        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def predict(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        return self.unet(latents, t, class_labels=cond).sample

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return to_uint8(latents)



ADAPTER = UNetAdapter
