"""The loaded pixel-space `UNet2DModel` (see families/unet.py for what its configs say)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diffusers import UNet2DModel

from synthgen.models.adapter import Adapter
from synthgen.models.components import class_labels, to_uint8
from synthgen.models.configs import ModelInfo
from synthgen.spec.job_spec import SamplerSpec
from synthgen.spec.plan import Sample


class UNetAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info, self.device, self.dtype = info, device, dtype
        self.unet = UNet2DModel.from_pretrained(info.path, torch_dtype=dtype).to(device).eval()

    def latent_shape(self, sampler: SamplerSpec) -> tuple[int, int, int]:
        return (self.info.channels, self.info.sample_size, self.info.sample_size)

    def conditions(self, samples: Sequence[Sample], guided: bool) -> torch.Tensor | None:
        if not self.info.class_conditional:
            return None
        return class_labels(self.info, samples, guided, self.device)

    def predict(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        return self.unet(latents, t, class_labels=cond).sample

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return to_uint8(latents)

    def encode(self, pixels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return pixels.to(self.device, self.dtype)  # pixel space: the image is its own latent


ADAPTER = UNetAdapter
