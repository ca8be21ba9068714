"""No code from data unless asked: pickled weights and unknown libraries need `trusted: true`.

A pickle (`.bin`, `.pt`, `.ckpt`, ... saved by torch.save) runs code while it loads; so does a
`model_index.json` naming a library other than diffusers or transformers (diffusers imports
it, even from a .py file in the model folder). Both are refused unless the spec says it trusts
the files (`model.trusted`, `filter.trusted`). Safetensors and TorchScript hold no code.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthgen.errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
KNOWN_LIBRARIES = {"diffusers", "transformers"}
TRAIN_CHECKPOINTS = "checkpoints/"  # train/checkpoints.py writes them; no model loader reads them


def pickled_files(names: Iterable[str]) -> list[str]:
    """Weight files that only pickle can load: a pickle suffix, and no .safetensors beside it
    (diffusers and transformers prefer safetensors, so a pickle next to one is never read).
    `checkpoints/` (synthgen train's resume state beside the model it saves) is never loaded."""
    names = [n for n in names if not n.startswith(TRAIN_CHECKPOINTS)]
    safe = {posixpath.dirname(n) for n in names if n.endswith(".safetensors")}
    return sorted(n for n in names if n.endswith(PICKLE_SUFFIXES) and posixpath.dirname(n) not in safe)


def refuse_pickles(names: Iterable[str], field: str, value: str, trusted: bool) -> None:
    found = pickled_files(names)
    if found and not trusted:
        raise UserError(field, value, f"{found[0]} is a pickle: loading it runs code from the file; "
                        f"convert it to safetensors, or set {field.rsplit('.', 1)[0]}.trusted: "
                        "true if you trust where it came from")


def folder_files(path: Path) -> list[str]:
    return [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]


def check_libraries(index: dict[str, Any], source: str, trusted: bool) -> None:
    """Every component library model_index.json names is diffusers or transformers."""
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library = value[0]
        if library is not None and library not in KNOWN_LIBRARIES and not trusted:
            raise UserError("model.source", source, f"model_index.json loads {name} from library "
                            f"{library!r}, which runs its code; only {', '.join(sorted(KNOWN_LIBRARIES))} "
                            "are loaded unless model.trusted: true")


def is_torchscript(file: Path) -> bool:
    """A TorchScript archive (torch.jit.save) holds its code as source under code/, loaded
    without unpickling objects; a module saved whole with torch.save does not."""
    try:
        with zipfile.ZipFile(file) as archive:
            return any("/code/" in f"/{name}" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
