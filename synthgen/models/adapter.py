"""The adapter interface the reverse loop drives: one loaded model on one device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from synthgen.models.configs import ModelInfo
from synthgen.models.sample_values import grouped, start_of, steps_of

if TYPE_CHECKING:
    import torch

    from synthgen.models.runtime import Precision
    from synthgen.spec.job_spec import SamplerSpec
    from synthgen.spec.plan import Sample


class Adapter:
    """One loaded model on one device. The reverse loop calls these, batch by batch."""

    info: ModelInfo
    device: torch.device
    dtype: torch.dtype
    precision: Precision  # set by registry.load_adapter

    def latent_shape(self, sampler: SamplerSpec) -> tuple[int, int, int]:
        """(channels, height, width) of the initial noise for one sample."""
        raise NotImplementedError

    def conditions(self, samples: Sequence[Sample], guided: bool) -> Any:
        """The model's conditioning for a batch; with guidance, unconditional rows come first."""
        raise NotImplementedError

    def predict(self, latents: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """The model output (noise, sample or v) for already scaled latents at step t."""
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Final latents -> uint8 images, shape (N, H, W, C)."""
        raise NotImplementedError

    def encode(self, pixels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Init images, float (N, C, H, W) in [-1, 1] -> latents (img2img); a latent model draws
        from its VAE's distribution with each sample's generator."""
        raise NotImplementedError

    def generate(self, samples: Sequence[Sample], sampler: SamplerSpec,
                 init: np.ndarray | None = None) -> np.ndarray:
        """Images for a batch, one loop per (steps, start step): a scheduler runs one number of
        steps for its whole batch, and with `init` (float (N, C, H, W) in [-1, 1], aligned with
        `samples`) the images of one loop all start at one step (models/reverse_loop.py). Adapters
        that cannot expose their loop override this."""
        from synthgen.models.reverse_loop import InitImages, reverse_loop  # torch: with the adapter only

        def loop(members: list[int]) -> np.ndarray:
            group = [samples[i] for i in members]
            fixed = sampler.model_copy(update={"steps": steps_of(group[0], sampler)})
            start = start_of(group[0], sampler)
            images = None if init is None or start == 0 else InitImages(init[members], start)
            return reverse_loop(self, group, fixed, images)

        return grouped(samples, lambda s: (steps_of(s, sampler), start_of(s, sampler)), loop)
