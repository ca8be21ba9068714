"""Model sources -> a local folder -> ModelInfo (configs only) -> a loaded adapter.

Sources: `builtin:NAME` (shipped in the package), a local diffusers folder, an fsspec URL
(copied once into a local cache) or a Hugging Face hub id (from the local cache when offline).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from synthgen.errors import UserError
from synthgen.models.base import Adapter, ModelInfo
from synthgen.spec import ModelSpec

BUILTIN_DIR = Path(__file__).parent / "builtin"

# family -> module with `inspect(path, source, revision) -> ModelInfo` and `ADAPTER`
FAMILIES = {"unet": "synthgen.models.unet"}

UNET_PIPELINES = {"DDPMPipeline", "DDIMPipeline"}


def inspect_model(spec: ModelSpec) -> ModelInfo:
    """Resolve the source and read the model's configs, without loading weights."""
    path = resolve_source(spec)
    family = spec.adapter or detect_family(path, spec.source)
    if family not in FAMILIES:
        raise UserError("model.adapter", family, f"unknown adapter; choose one of {', '.join(FAMILIES)}")
    module = importlib.import_module(FAMILIES[family])
    return module.inspect(path, spec.source, spec.revision or fingerprint(path))


def load_adapter(info: ModelInfo, spec: ModelSpec) -> Adapter:
    """Load the weights once, onto the device this process should use."""
    device = pick_device(spec.device)
    dtype = pick_dtype(spec.dtype, device)
    module = importlib.import_module(FAMILIES[info.family])
    return module.ADAPTER(info, device, dtype)


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    """Half precision only where it is fast: on CPU it falls back to float32, with a warning."""
    if device.type == "cpu" and requested != "float32":
        import logging

        logging.getLogger("synthgen").warning(
            "model.dtype=%s on CPU: using float32 (half precision is for GPUs)", requested)
        return torch.float32
    return getattr(torch, requested)


def resolve_source(spec: ModelSpec) -> Path:
    source = spec.source
    if source.startswith("builtin:"):
        return _builtin(source.removeprefix("builtin:"))
    if "://" in source:
        return _cached_copy(source, spec.storage_options)
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise UserError("model.source", source, "is a file; give the folder of a diffusers model")
    if _looks_like_hub_id(source):
        return _hub_snapshot(source, spec.revision)
    raise UserError("model.source", source,
                    "no such folder; give builtin:NAME, a diffusers folder, a hub id or a URL")


def detect_family(path: Path, source: str) -> str:
    index = _read_json(path / "model_index.json")
    if index:
        name = index.get("_class_name", "")
        if name in UNET_PIPELINES or index.get("unet", [None, None])[1] == "UNet2DModel":
            return "unet"
        return _family_from_pipeline(name, source)
    config = _read_json(path / "config.json")
    if config.get("_class_name") == "UNet2DModel":
        return "unet"
    raise UserError("model.source", source,
                    "no model_index.json or UNet2DModel config.json there; is it a diffusers model?")


def _family_from_pipeline(name: str, source: str) -> str:
    raise UserError("model.source", source, f"pipeline {name or '(unnamed)'} is not supported")


def fingerprint(path: Path) -> str:
    """A content hash of configs and weights: the provenance of a model without a revision."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        digest.update(rel.encode())
        digest.update(_file_digest(file))
    return "sha256:" + digest.hexdigest()[:16]


def _file_digest(file: Path) -> bytes:
    """Whole small files; the size, head and tail of big weight files (hashing GBs is slow)."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        if size <= 64 << 20:
            return hashlib.sha256(f.read()).digest()
        head = f.read(8 << 20)
        f.seek(-(8 << 20), os.SEEK_END)
        return hashlib.sha256(str(size).encode() + head + f.read()).digest()


def _builtin(name: str) -> Path:
    path = BUILTIN_DIR / name
    if not (path / "model_index.json").is_file():
        known = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "model_index.json").is_file())
        raise UserError("model.source", f"builtin:{name}",
                        f"no such built-in model; choose one of {', '.join(known) or '(none)'}")
    return path


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "~"))


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 - every hub failure means the same to the user
        raise UserError("model.source", repo_id,
                        f"not a local folder and not loadable from the hub ({type(exc).__name__}); "
                        "download it first or give a local path") from None


def _cached_copy(url: str, options: dict[str, Any]) -> Path:
    """Copy a remote model once per machine; a file lock keeps actors on one node from racing."""
    import fsspec

    cache = Path(os.environ.get("SYNTHGEN_CACHE", Path.home() / ".cache" / "synthgen")) / "models"
    target = cache / hashlib.sha256(url.encode()).hexdigest()[:24]
    cache.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            fs, root = fsspec.core.url_to_fs(url, **options)
            if not fs.isdir(root):
                raise UserError("model.source", url, "no such folder at that URL")
            fs.get(root.rstrip("/") + "/", str(target), recursive=True)
            (target / ".complete").touch()
    return target


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}
