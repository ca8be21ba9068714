"""Loading a diffusers pipeline folder's components, and its VAE decoder.

Everything a latent adapter needs to know is read from the folder's own configs (latent
channels, VAE factor and scaling, sample size), never assumed, so models of any size work.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from synthgen.models.configs import ModelInfo, component, read_json
from synthgen.spec.plan import Sample


def load_component(path: Path, index: dict[str, Any], name: str, dtype: torch.dtype | None = None) -> Any:
    """Load one component with the library and class model_index.json names for it."""
    _quiet_loading()
    found = component(index, name)
    if found is None:
        raise ValueError(f"model_index.json names no library and class for its {name!r}")
    library, class_name = found
    component_class = getattr(importlib.import_module(library), class_name)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return component_class.from_pretrained(path / name, **kwargs)


def _quiet_loading() -> None:
    """Workers log to files; per-component progress bars would only clutter them."""
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


class LatentDecoder:
    """The pipeline's VAE: latents -> uint8 pixels, the whole batch in one decode call; and the
    way back for init images (img2img)."""

    def __init__(self, path: Path, index: dict[str, Any], device: torch.device, dtype: torch.dtype) -> None:
        config = read_json(path / "vae" / "config.json")
        # Some VAEs overflow in float16 (SDXL's); their config asks to decode in float32.
        upcast = dtype == torch.float16 and bool(config.get("force_upcast", False))
        self.dtype = torch.float32 if upcast else dtype
        self.vae = load_component(path, index, "vae", self.dtype).to(device).eval()
        self.scale = float(config.get("scaling_factor") or 0.18215)
        self.shift = float(config.get("shift_factor") or 0.0)

    @torch.inference_mode()
    def __call__(self, latents: torch.Tensor) -> np.ndarray:
        latents = latents.to(self.dtype) / self.scale + self.shift
        return to_uint8(self.vae.decode(latents).sample)

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Pixels in [-1, 1] -> scaled latents: a draw from the VAE's latent distribution with each
        sample's generator (diffusers' retrieve_latents), then (z - shift) * scale."""
        dist = self.vae.encode(pixels.to(self.vae.device, self.dtype)).latent_dist
        draws = torch.stack([torch.randn(dist.mean.shape[1:], generator=g) for g in generators])
        return (dist.mean + dist.std * draws.to(dist.mean) - self.shift) * self.scale


# Model outputs in [-1, 1] as the uint8 pixels PIL wants.
def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW floats -> uint8 NHWC, rounded."""
    images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


# Class-id conditioning, shared by the class-conditional families (unet, dit).
def class_labels(info: ModelInfo, samples: Sequence[Sample], guided: bool,
                 device: torch.device) -> torch.Tensor:
    """Each sample's model class id; with guidance, the null class for every row comes first."""
    ids = [info.model_label(s.model_label, s.label_name, s.label) for s in samples]
    if guided:
        ids = [info.null_class] * len(samples) + ids
    return torch.tensor(ids, dtype=torch.long, device=device)
