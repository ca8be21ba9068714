"""The loaded DiT: a class-conditional transformer and its VAE (see families/dit.py).

A transformer that learns its variance outputs twice the latent channels; the loop needs the
noise half.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from synthgen.models.adapter import Adapter
from synthgen.models.components import LatentDecoder, class_labels, load_component
from synthgen.models.configs import ModelInfo, pipeline_index
from synthgen.models.dit import COMPONENTS
from synthgen.spec.job_spec import SamplerSpec
from synthgen.spec.plan import Sample


class DiTAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info, self.device, self.dtype = info, device, dtype
        index = pipeline_index(info.path, info.source, COMPONENTS)
        self.transformer = load_component(info.path, index, "transformer", dtype).to(device).eval()
        self.decoder = LatentDecoder(info.path, index, device, dtype)

    def latent_shape(self, sampler: SamplerSpec) -> tuple[int, int, int]:
        size = self.info.sample_size // self.info.vae_scale_factor
        return (self.transformer.config.in_channels, size, size)

    def conditions(self, samples: Sequence[Sample], guided: bool) -> torch.Tensor:
        return class_labels(self.info, samples, guided, self.device)

    def predict(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        timesteps = t.reshape(-1).to(latents.device).expand(latents.shape[0])
        out = self.transformer(latents, timestep=timesteps, class_labels=cond).sample
        channels = latents.shape[1]
        return out[:, :channels] if out.shape[1] == 2 * channels else out

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return self.decoder(latents)

    def encode(self, pixels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return self.decoder.encode(pixels, generators).to(self.dtype)


ADAPTER = DiTAdapter
