"""Reading a diffusers pipeline folder: its configs, its components, and its VAE decoder.

Everything a latent adapter needs to know is read from the folder's own configs (latent
channels, VAE factor and scaling, sample size), never assumed, so models of any size work.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthgen.errors import UserError
from synthgen.models.base import to_uint8


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def pipeline_index(path: Path, source: str, needs: tuple[str, ...]) -> dict[str, Any]:
    """model_index.json, checked to name the components this adapter loads."""
    index = read_json(path / "model_index.json")
    missing = [name for name in needs if not _component(index, name) or not (path / name).is_dir()]
    if missing:
        raise UserError("model.source", source,
                        f"the pipeline folder lacks {', '.join(missing)}; is it a complete diffusers model?")
    return index


def scheduler_config(path: Path) -> dict[str, Any]:
    return read_json(path / "scheduler" / "scheduler_config.json")


def vae_scale_factor(vae_config: dict[str, Any]) -> int:
    """Pixels per latent cell: the VAE halves the size once per block but the last."""
    return 2 ** (len(vae_config.get("block_out_channels") or (0, 0, 0, 0)) - 1)


def square(size: int | list[int] | tuple[int, ...] | None, default: int) -> int:
    """A config's sample_size (an int, or a pair whose first item we use)."""
    if size is None:
        return default
    return size if isinstance(size, int) else int(size[0])


def load_component(path: Path, index: dict[str, Any], name: str, dtype: torch.dtype | None = None) -> Any:
    """Load one component with the library and class model_index.json names for it."""
    _quiet_loading()
    library, class_name = _component(index, name)
    component_class = getattr(importlib.import_module(library), class_name)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return component_class.from_pretrained(path / name, **kwargs)


def _component(index: dict[str, Any], name: str) -> tuple[str, str] | None:
    value = index.get(name)
    if isinstance(value, list) and len(value) == 2 and all(value):
        return value[0], value[1]
    return None


def _quiet_loading() -> None:
    """Workers log to files; per-component progress bars would only clutter them."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()


class LatentDecoder:
    """The pipeline's VAE: latents -> uint8 pixels, the whole batch in one decode call."""

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
