"""No code from data unless asked: pickled weights and unknown libraries need `trusted: true`.

A pickle (`.bin`, `.pt`, `.ckpt`, ... saved by torch.save) runs code while it loads; so does a
`model_index.json` naming a library other than diffusers or transformers (diffusers imports
it, even from a .py file in the model folder). Both are refused unless the spec says it trusts
the files (`model.trusted`, `filter.trusted`). Safetensors and TorchScript hold no code.
"""

from __future__ import annotations

import os
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


def model_files(path: Path) -> list[tuple[str, Path]]:
    """Every file of a model folder as (relative name, path), sorted, following symlinks: a
    component folder linked from elsewhere (`unet -> ../weights-v1`) is part of the model, for
    its revision hash and its pickle check alike. A link back into itself is walked once."""
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        rel = Path(folder).relative_to(path)
        found += [((rel / name).as_posix(), Path(folder) / name) for name in files
                  if os.path.isfile(os.path.join(folder, name))]
    return sorted(found)


def folder_files(path: Path) -> list[str]:
    return [rel for rel, _ in model_files(path)]


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
    """A TorchScript archive (torch.jit.save): one root folder holding its code as source under
    code/ and its constants beside it. A plan-time hint only: any zip can carry such names, so
    the load itself (`quality/judges.load_torch_module`) never falls back to unpickling."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) != 1:
        return False
    root = roots.pop()
    return f"{root}/constants.pkl" in names and any(n.startswith(f"{root}/code/") for n in names)
