"""Class-id conditioning, shared by the class-conditional families (unet, dit)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from synthgen.models.info import ModelInfo
from synthgen.spec.plan import Sample


def class_labels(info: ModelInfo, samples: Sequence[Sample], guided: bool,
                 device: torch.device) -> torch.Tensor:
    """Each sample's model class id; with guidance, the null class for every row comes first."""
    ids = [info.model_label(s.model_label, s.label_name, s.label) for s in samples]
    if guided:
        ids = [info.null_class] * len(samples) + ids
    return torch.tensor(ids, dtype=torch.long, device=device)
