"""The filter's classifier as its files describe it, checked at plan time without loading it.

Kinds (`kind: auto` tells them apart by what the path holds): `builtin:digits`, a torch file or
folder, a transformers image classifier, a timm folder, a CLIP model; see quality/filter.py. A
class name matches a classifier label exactly, ignoring case, or as one of its comma-separated
synonyms ("tench, Tinca tinca").
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.errors import UserError
from synthgen.inputs.builtin import BUILTIN_DIGITS
from synthgen.models.configs import read_json
from synthgen.models.trust import folder_files, is_torchscript, refuse_pickles
from synthgen.spec.job_spec import FilterSpec
from synthgen.spec.plan import Plan
from synthgen.storage.filesystem import CONFIG_CAP, read_local

TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
DEFAULT_LABEL = re.compile(r"LABEL_\d+")  # transformers' id2label when nobody named the classes


@dataclass(frozen=True)
class ClassifierInfo:
    """What the classifier's files say, read without loading weights."""

    kind: str
    path: Path | None
    names: tuple[str, ...] | None  # None: output i is the job's class i


def check_filter(plan: Plan) -> None:
    """Every filter problem that shows without loading the classifier: one UserError line."""
    spec = plan.spec.filter
    if spec is None:
        return
    if any(entry.label < 0 or entry.label_name is None for entry in plan.manifest.entries):
        raise UserError("filter", spec.classifier, "the filter judges labels, and some prompts have none; "
                                                   "give every prompt a label, or remove the filter")
    info = inspect_classifier(spec)
    class_targets(info, plan.manifest.class_names)


def inspect_classifier(spec: FilterSpec) -> ClassifierInfo:
    if spec.classifier == BUILTIN_DIGITS:
        return ClassifierInfo("builtin", None, tuple(str(d) for d in range(10)))
    if spec.classifier.startswith("builtin:") or "://" in spec.classifier:
        raise UserError("filter.classifier", spec.classifier,
                        f"give {BUILTIN_DIGITS} or a local file or folder (copy remote classifiers to "
                        "every worker's disk, or bake them into the image)")
    path = Path(spec.classifier).expanduser()
    if not path.exists():
        raise UserError("filter.classifier", spec.classifier, "no such file or folder")
    kind = _detect_kind(path) if spec.kind == "auto" else spec.kind
    _refuse_code(kind, path, spec.trusted)
    if kind == "timm" and not _has_timm():
        raise UserError("filter.kind", "timm", "timm is not installed here; `pip install timm`, or "
                                               "export the model with torch.jit.save and use kind: torch")
    return ClassifierInfo(kind, path, _names(kind, path))


def _refuse_code(kind: str, path: Path, trusted: bool) -> None:
    """A torch file that is not TorchScript, or pickled weights, load only when trusted."""
    if kind == "torch":
        file = path / "model.pt" if path.is_dir() else path
        if not is_torchscript(file) and not trusted:
            raise UserError("filter.trusted", False, f"{file} was saved with torch.save: loading "
                            "it runs code from the file; export it with torch.jit.save, or set "
                            "filter.trusted: true if you trust where it came from")
    elif kind in ("transformers", "timm", "clip"):
        refuse_pickles(folder_files(path), "filter.trusted", str(path), trusted)


def _detect_kind(path: Path) -> str:
    if path.is_file():
        if path.suffix in TORCH_SUFFIXES:
            return "torch"
        raise UserError("filter.classifier", str(path),
                        f"a classifier file must be a torch module ({', '.join(TORCH_SUFFIXES)})")
    if (path / "model.pt").is_file():
        return "torch"
    config = _config(path)
    if "architecture" in config:
        return "timm"
    if config.get("model_type") == "clip":
        return "clip"
    if "id2label" in config or "model_type" in config:
        return "transformers"
    raise UserError("filter.classifier", str(path), "holds no model.pt, nor a config.json naming a model")


def _config(path: Path) -> dict[str, Any]:
    config = read_json(path / "config.json")
    if not config:
        raise UserError("filter.classifier", str(path), "has no config.json (nor model.pt)")
    return config


def _names(kind: str, path: Path) -> tuple[str, ...] | None:
    """The classifier's class names in output order, where its files give them."""
    if kind == "clip":
        return None
    if kind == "torch":
        file = (path if path.is_dir() else path.parent) / "classes.json"
        if not file.is_file():
            return None
        return tuple(json.loads(read_local(file, CONFIG_CAP, "filter.classifier")))  # a list, not a config
    config = _config(path)
    if kind == "timm":
        labels = config.get("label_names") or config.get("pretrained_cfg", {}).get("label_names")
        if isinstance(labels, dict):
            labels = [labels[k] for k in sorted(labels, key=int)]
        described = config.get("label_descriptions") or {}
        return tuple(described.get(n, n) for n in labels) if labels else None
    id2label = config.get("id2label") or {}
    names = [id2label[k] for k in sorted(id2label, key=int)]
    return None if not names or all(DEFAULT_LABEL.fullmatch(n) for n in names) else tuple(names)


def class_targets(info: ClassifierInfo, class_names: tuple[str, ...]) -> np.ndarray:
    """For each job class, the classifier output that stands for it."""
    if info.names is None:
        return np.arange(len(class_names))
    targets = []
    for name in class_names:
        found = _match(name, info.names)
        if found is None:
            examples = ", ".join(repr(n) for n in info.names[:4])
            raise UserError("filter.classifier", str(info.path or BUILTIN_DIGITS),
                            f"its classes have no {name!r} (it knows {examples}...); use a classifier "
                            "trained on this job's classes, or name the classes as it does")
        targets.append(found)
    return np.array(targets)


def _match(name: str, names: tuple[str, ...]) -> int | None:
    folded = name.strip().lower()
    for exact in (True, False):
        for i, label in enumerate(names):
            options = [label] if exact else [s.strip().lower() for s in [label, *label.split(",")]]
            if (name if exact else folded) in options:
                return i
    return None


def _has_timm() -> bool:
    return importlib.util.find_spec("timm") is not None
