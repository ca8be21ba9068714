"""synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker sees of the lazy attributes below
    from synthgen.api import Interrupted, PlanResult, RunResult, plan, resume, run
    from synthgen.output.readers import data_files
    from synthgen.output.torch_dataset import open_dataset

# The one place the version is written: pyproject.toml reads this literal (tool.setuptools.dynamic),
# and `synthgen --version` prints it.
__version__ = "0.1.0"
# The distribution's name on the package registry, where "synthgen" is an unrelated project.
DISTRIBUTION = "synthgen-images"

# The API and the readers load on first use, so that `import synthgen` stays light (no torch,
# no pyarrow, no ray).
API = ("plan", "run", "resume", "PlanResult", "RunResult", "Interrupted")
_LAZY = {"open_dataset": "synthgen.output.torch_dataset", "data_files": "synthgen.output.readers",
         **{name: "synthgen.api" for name in API}}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthgen' has no attribute {name!r}")


__all__ = ["Interrupted", "PlanResult", "RunResult", "__version__", "data_files", "open_dataset", "plan",
           "resume", "run"]
