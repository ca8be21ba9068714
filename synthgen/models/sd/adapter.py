"""Stable Diffusion 1.x/2.x, loaded, with synthgen's own loop (see families/sd.py).

synthgen runs the reverse loop itself, so every sample keeps its own generator. Each distinct
prompt is encoded once and kept in a small cache across batches (a class manifest with
templates has few distinct prompts); guidance uses the sample's negative prompt, or "".
The pipeline's safety checker is not run: it would blank images and silently corrupt labels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from synthgen.models.adapter import Adapter
from synthgen.models.components import LatentDecoder, load_component
from synthgen.models.configs import ModelInfo, pipeline_index
from synthgen.models.sd import COMPONENTS
from synthgen.spec.job_spec import SamplerSpec
from synthgen.spec.plan import Sample


class PromptEncoder:
    """Tokenizer + text encoder, with an LRU cache of embeddings keyed by prompt."""

    def __init__(self, tokenizer: Any, text_encoder: Any, device: torch.device, capacity: int = 512) -> None:
        self.tokenizer, self.text_encoder, self.device = tokenizer, text_encoder, device
        # The tokenizer pads to its max length; a text encoder with fewer positions caps it.
        positions = getattr(text_encoder.config, "max_position_embeddings", None) or 10**9
        self.max_length = min(int(tokenizer.model_max_length), positions)
        self.use_mask = bool(getattr(text_encoder.config, "use_attention_mask", False))
        self.capacity = capacity
        self.cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @torch.inference_mode()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        """Embeddings for prompts (repeats allowed); only prompts not cached are encoded."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        if missing:
            for prompt, embedding in zip(missing, self._encode(missing), strict=True):
                self.cache[prompt] = embedding
        for prompt in prompts:
            self.cache.move_to_end(prompt)
        batch = torch.stack([self.cache[p] for p in prompts])
        while len(self.cache) > max(self.capacity, len(set(prompts))):
            self.cache.popitem(last=False)
        return batch

    def _encode(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", max_length=self.max_length,
                                truncation=True, return_tensors="pt")
        mask = tokens.attention_mask.to(self.device) if self.use_mask else None
        return self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]


class StableDiffusionAdapter(Adapter):
    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info, self.device, self.dtype = info, device, dtype
        index = pipeline_index(info.path, info.source, COMPONENTS)
        self.unet = load_component(info.path, index, "unet", dtype).to(device).eval()
        text_encoder = load_component(info.path, index, "text_encoder", dtype).to(device).eval()
        self.prompts = PromptEncoder(load_component(info.path, index, "tokenizer"), text_encoder, device)
        self.decoder = LatentDecoder(info.path, index, device, dtype)

    def latent_shape(self, sampler: SamplerSpec) -> tuple[int, int, int]:
        factor = self.info.vae_scale_factor
        height = sampler.height or self.info.sample_size
        width = sampler.width or self.info.sample_size
        return (self.unet.config.in_channels, height // factor, width // factor)

    def conditions(self, samples: Sequence[Sample], guided: bool) -> torch.Tensor:
        texts = [s.prompt or "" for s in samples]
        if guided:
            texts = [s.negative_prompt or "" for s in samples] + texts
        return self.prompts(texts).to(self.dtype)

    def predict(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        return self.unet(latents, t, encoder_hidden_states=cond).sample

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return self.decoder(latents)

    def encode(self, pixels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return self.decoder.encode(pixels, generators).to(self.dtype)


ADAPTER = StableDiffusionAdapter
