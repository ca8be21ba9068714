"""glibc's allocator, tuned for torch on CPU: keep freed memory for the next batch.

By default glibc serves an allocation above 128 KiB (a threshold it raises as it goes, up to
32 MiB) with a fresh mmap and unmaps it on free, so the UNet's activations land on new zeroed
pages batch after batch: on the benchmark job 2.7 M page faults per 1,000 images and a quarter
of the CPU time in the kernel. A fixed 32 MiB threshold, trimming only above 256 MiB, cut the
bare loop's time per 1,000 images from 15.9 s to 12.0 s. Linux with glibc only; a no-op elsewhere.
"""

from __future__ import annotations

import ctypes
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 256 << 20), (M_TOP_PAD, 64 << 20))


def keep_freed_memory(device: torch.device) -> bool:
    """Apply SETTINGS to this process when torch runs on the CPU; True when glibc took them all."""
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, say)
        return False
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
