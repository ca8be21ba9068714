"""synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
# The distribution's name on the package registry, where "synthgen" is an unrelated project.
DISTRIBUTION = "synthgen-images"

# Readers load on first use, so that `import synthgen` stays light (no torch, no pyarrow).
_LAZY = {"open_dataset": "synthgen.output.torch_dataset", "data_files": "synthgen.output.readers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthgen' has no attribute {name!r}")


__all__ = ["__version__", "data_files", "open_dataset"]
