"""The adapter interface the reverse loop drives, and what is known of a model before loading."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from synthgen.plan import Sample
    from synthgen.spec import SamplerSpec


@dataclass(frozen=True)
class ModelInfo:
    """What the model's config files say, read without loading any weights."""

    family: str
    path: Path
    source: str
    revision: str
    scheduler_config: dict[str, Any]
    sample_size: int
    channels: int
    num_class_embeds: int | None = None
    null_class: int | None = None
    guidable: bool = False
    id2label: dict[int, str] = field(default_factory=dict)
    license: str | None = None
    # Latent and text-to-image models (defaults describe a pixel-space UNet):
    prompted: bool = False  # text-to-image: every sample needs a prompt
    negative_prompts: bool = False  # the model takes negative prompts
    vae_scale_factor: int = 1  # pixels per latent cell
    size_multiple: int | None = None  # output sizes must be multiples of this; None: fixed size
    label_fallback: bool = True  # a class id may default to the entry's label index
    pipeline: str | None = None  # the diffusers pipeline class named in model_index.json

    @property
    def class_conditional(self) -> bool:
        return self.num_class_embeds is not None

    def model_label(self, model_label: int | None, label_name: str | None, label: int) -> int | None:
        """The model's class id: the entry's model_label, else its name in id2label, else label.

        An id2label value may list synonyms separated by commas ("tench, Tinca tinca"); any of
        them names the class. Without a match, models whose labels are not indices give None.
        """
        if model_label is not None:
            return model_label
        for class_id, names in self.id2label.items():
            if label_name == names or label_name in (n.strip() for n in names.split(",")):
                return class_id
        return label if self.label_fallback else None


class Adapter:
    """One loaded model on one device. The reverse loop calls these, batch by batch."""

    info: ModelInfo
    device: torch.device
    dtype: torch.dtype

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

    def generate(self, samples: Sequence[Sample], sampler: SamplerSpec) -> np.ndarray:
        """Images for a batch; adapters that cannot expose their loop override this."""
        from synthgen.sampling import reverse_loop

        return reverse_loop(self, samples, sampler)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW floats -> uint8 NHWC, rounded, as PIL wants them."""
    import torch

    images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()
