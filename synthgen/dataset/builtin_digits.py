"""The built-in digits: scikit-learn's `load_digits`, split once for everyone.

Train is index < 1200, test (held out, it judges the shipped model) is index >= 1200; images stay
unquantized arrays of load_digits' 0..16 ink levels divided by 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits

from synthgen.dataset.labeled_sources import BUILTIN_DIGITS, DIGITS_TRAIN_END, Split

DIGITS_MAX_VALUE = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """A split of the built-in digits: images float32 [N, 8, 8] in 0..1 (load_digits' 0..16 ink
    levels divided by 16, not quantized), int64 labels, the class names "0".."9"."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str


def load_digits_split(split: Split, limit: int | None = None) -> DigitsSplit:
    """The built-in digits' train (index < 1200, or its first `limit`) or test split."""
    digits = load_digits()
    end = DIGITS_TRAIN_END if limit is None else min(limit, DIGITS_TRAIN_END)
    part = slice(0, end) if split == "train" else slice(DIGITS_TRAIN_END, None)
    return DigitsSplit((digits.images[part] / DIGITS_MAX_VALUE).astype(np.float32),
                       digits.target[part].astype(np.int64),
                       tuple(str(n) for n in digits.target_names), f"{BUILTIN_DIGITS}:{split}")
