"""Class-conditional latent transformers (DiT: DiTTransformer2DModel or Transformer2DModel + VAE).

Images come at the size the model was trained for (its sample size times the VAE factor).
A sample's class id is its entry's `model_label`, else its class name looked up in the model's
id2label (model_index.json, as DiTPipeline saves it; any comma-separated synonym counts).
Guidance uses the model's null class, the id right after the last real class. A transformer
that learns its variance outputs twice the latent channels; the loop needs the noise half.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthgen.errors import UserError
from synthgen.models.base import Adapter, ModelInfo
from synthgen.models.components import (
    LatentDecoder,
    load_component,
    pipeline_index,
    read_json,
    scheduler_config,
    square,
    vae_scale_factor,
)
from synthgen.plan import Sample
from synthgen.spec import SamplerSpec

COMPONENTS = ("transformer", "vae")


def inspect(path: Path, source: str, revision: str) -> ModelInfo:
    index = pipeline_index(path, source, COMPONENTS)
    config = read_json(path / "transformer" / "config.json")
    classes = config.get("num_embeds_ada_norm")
    if not classes:
        raise UserError("model.source", source,
                        "its transformer is not class-conditional (no num_embeds_ada_norm in its config)")
    factor = vae_scale_factor(read_json(path / "vae" / "config.json"))
    extra = read_json(path / "synthgen.json")
    id2label = {int(k): str(v) for k, v in (index.get("id2label") or extra.get("id2label") or {}).items()}
    return ModelInfo(
        family="dit",
        path=path,
        source=source,
        revision=revision,
        scheduler_config=scheduler_config(path),
        sample_size=square(config.get("sample_size"), 32) * factor,
        channels=config.get("in_channels", 4),
        num_class_embeds=classes,
        null_class=classes,
        guidable=True,
        id2label=id2label,
        license=extra.get("license"),
        vae_scale_factor=factor,
        size_multiple=None,  # trained at one size, and DiT unpatchifies square grids only
        # With id2label, a class name the model does not know is a mistake, not index 0, 1, ...
        label_fallback=not id2label,
        pipeline=index.get("_class_name"),
    )


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
        ids = [self.info.model_label(s.model_label, s.label_name, s.label) for s in samples]
        if guided:
            ids = [self.info.null_class] * len(samples) + ids
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def predict(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        timesteps = t.reshape(-1).to(latents.device).expand(latents.shape[0])
        out = self.transformer(latents, timestep=timesteps, class_labels=cond).sample
        channels = latents.shape[1]
        return out[:, :channels] if out.shape[1] == 2 * channels else out

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return self.decoder(latents)


ADAPTER = DiTAdapter
