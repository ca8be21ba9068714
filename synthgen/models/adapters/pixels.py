"""Model outputs in [-1, 1] as the uint8 pixels PIL wants."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW floats -> uint8 NHWC, rounded."""
    images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()
