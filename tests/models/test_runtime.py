"""The CPU allocator settings the worker and trainer apply (see synthgen/malloc.py)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import resource
import sys

import torch
from synthgen.models.runtime import keep_freed_memory
applied = sys.argv[1] == "tune" and keep_freed_memory(torch.device("cpu"))
x = torch.randn(64, 64, 16, 16)
conv = torch.nn.Conv2d(64, 64, 3, padding=1)
with torch.inference_mode():
    conv(x)  # warm up: oneDNN primitives, first pages
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        conv(conv(x))
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def faults(tune: bool) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, "tune" if tune else "default"], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again():
    applied, tuned = faults(tune=True)
    _, default = faults(tune=False)
    assert applied
    # 4 MiB activations: by default each is a fresh mmap (about 1,000 faults apiece).
    assert tuned * 10 < default, (tuned, default)
