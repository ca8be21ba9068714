"""Where and how a model runs: its device, its precision, and glibc's allocator tuned for torch.

keep_freed_memory: by default glibc serves an allocation above 128 KiB (a threshold it raises as
it goes, up to 32 MiB) with a fresh mmap and unmaps it on free, so the UNet's activations land
on new zeroed pages batch after batch: on the benchmark job 2.7 M page faults per 1,000 images
and a quarter of the CPU time in the kernel. A fixed 32 MiB threshold, trimming only above 256
MiB, cut the bare loop's time per 1,000 images from 15.9 s to 12.0 s. Linux with glibc only; a
no-op elsewhere.

Precision: `model.dtype: auto` is resolved once, by the driver, into the dtype the job records
(job.json, job_id, the card): bfloat16 on a CPU with bf16 kernels (AVX512-BF16 or AMX), float16
on CUDA, float32 elsewhere. Nothing here imports torch at module level: the driver uses it.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache, wraps
from pathlib import Path
from typing import TYPE_CHECKING

from synthgen.models.trust import model_files

if TYPE_CHECKING:
    import torch

log = logging.getLogger("synthgen")

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 256 << 20), (M_TOP_PAD, 64 << 20))
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}  # /proc/cpuinfo: kernels oneDNN runs in bf16
CPUINFO = Path("/proc/cpuinfo")
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt"}


def keep_freed_memory(device: torch.device) -> bool:
    """Apply SETTINGS to this process when torch runs on the CPU; True when glibc took them all."""
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, say)
        return False
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)


def weights_bytes(path: Path) -> int | None:
    """The size of a model folder's weight files; None when it holds none (configs only)."""
    sizes = [f.stat().st_size for _, f in model_files(path) if f.suffix in WEIGHT_SUFFIXES]
    return sum(sizes) if sizes else None


def pick_device(requested: str) -> torch.device:
    import torch  # callers that only inspect a model never get here

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@cache
def cpu_has_bf16() -> bool:
    """True when this machine's CPU has bf16 matrix instructions (Zen 4, Sapphire Rapids and
    later), read from the kernel's flags: without them torch emulates bf16, slower than float32."""
    try:
        text = CPUINFO.read_text()
    except OSError:  # not Linux: no flags to read, so no claim
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return bool(BF16_CPU_FLAGS & set(flags))


def resolve_dtype(requested: str, device: str) -> str:
    """The dtype `model.dtype` means on a device ("cpu", "cuda" or "auto": this machine's):
    only `auto` changes here; an explicit dtype the device lacks falls back in the worker."""
    if requested != "auto":
        return requested
    if device == "auto":
        device = "cuda" if NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir()) else "cpu"
    if device == "cuda":
        return "float16"
    return "bfloat16" if cpu_has_bf16() else "float32"


@dataclass(frozen=True)
class Precision:
    """How a model runs: the dtype of its weights (and latents), and on a CPU with bf16 kernels
    the autocast dtype its matrix and convolution kernels run in (weights stay float32)."""

    weights: torch.dtype
    autocast: torch.dtype | None = None

    @property
    def name(self) -> str:
        """The dtype the model computes in, as the spec writes it."""
        return str(self.autocast or self.weights).removeprefix("torch.")

    def context(self, device: torch.device) -> AbstractContextManager:
        """Where the model's forward passes run (the reverse loop runs inside it)."""
        import torch  # callers that only inspect a model never get here

        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.autocast)

    def around(self, generate: Callable, device: torch.device) -> Callable:
        """`generate`, run inside this precision's context."""

        @wraps(generate)
        def run(*args: object, **kwargs: object) -> object:
            with self.context(device):
                return generate(*args, **kwargs)

        return run


def pick_precision(requested: str, device: torch.device) -> Precision:
    """float16/bfloat16 as asked on GPUs; on a CPU, bfloat16 through autocast where the CPU has
    bf16 kernels (faster than bf16 weights: see docs/benchmarks.md), float32 otherwise, warned once."""
    import torch  # callers that only inspect a model never get here

    dtype = resolve_dtype(requested, device.type)
    if device.type != "cpu" or dtype == "float32":
        return Precision(getattr(torch, dtype))
    if dtype == "bfloat16" and cpu_has_bf16():
        return Precision(torch.float32, autocast=torch.bfloat16)
    log.warning("model.dtype=%s on this CPU: using float32 (%s)", dtype,
                "float16 is for GPUs" if dtype == "float16"
                else "it has no bf16 instructions (AVX512-BF16 or AMX)")
    return Precision(torch.float32)
