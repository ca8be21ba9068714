"""Model sources -> a local folder and a revision.

Sources: `builtin:NAME` (shipped in the package), a local diffusers folder, an fsspec URL
(copied once into a local cache) or a Hugging Face hub id (from the local cache when offline).
How much of a remote model is fetched depends on who asks: `synthgen plan` reads the local cache
only, the driver fetches configs only, and a worker fetches the whole model.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

from synthgen.errors import UserError
from synthgen.models.configs import read_json
from synthgen.models.trust import folder_files, model_files, refuse_pickles
from synthgen.spec.job_spec import JobSpec, ModelSpec
from synthgen.storage.conditional import flock_within
from synthgen.storage.filesystem import CONFIG_CAP, WEIGHTS_CAP, check_reachable, copy_capped, open_fs
from synthgen.storage.layout import relative_to

BUILTIN_DIR = Path(__file__).parent / "builtin"
BUILTIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# What the driver fetches of a remote model to check a job against it: configs, never weights.
CONFIG_PATTERNS = ["*.json"]
CACHE_WAIT_S = 3600.0  # another process copying a large model holds the cache's lock that long

# all: the whole model (a worker) | configs: configs only (the driver) | cached: nothing (plan)
Fetch = Literal["all", "configs", "cached"]


class NotCached(UserError):
    """A remote model that is not on this machine, asked for without fetching."""


def resolve_source(spec: ModelSpec, fetch: Fetch = "all") -> tuple[Path, str]:
    """The model's local folder and its revision: the hub commit, else a content hash (a
    folder's files, a URL's listing). job.json pins it; resumes and workers must match it."""
    source = spec.source
    if "://" in source:
        return _cached_copy(spec, configs_only=fetch != "all")
    path = _builtin(source) if source.startswith("builtin:") else Path(source).expanduser()
    # load_spec made a local path absolute, from the spec's folder: a relative one left is a hub
    # id, never a folder of the working directory (the actors run in another one)
    local = path.is_absolute()
    if local and path.is_dir():  # a folder's revision is its content, whatever a spec calls it
        refuse_pickles(folder_files(path), "model.trusted", source, spec.trusted)
        return path, fingerprint(path)
    if local and path.exists():
        raise UserError("model.source", source, "is a file; give the folder of a diffusers model")
    if _looks_like_hub_id(source):
        path = _hub_snapshot(source, spec.revision, fetch)
        refuse_pickles(folder_files(path), "model.trusted", source, spec.trusted)
        return path, path.name
    raise UserError("model.source", source,
                    "no such folder; give builtin:NAME, a diffusers folder, a hub id or a URL")


def fingerprint(path: Path) -> str:
    """A content hash of configs and weights: the provenance of a model without a revision."""
    digest = hashlib.sha256()
    for rel, file in model_files(path):
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


def _builtin(source: str) -> Path:
    """A model shipped in the package: a plain folder name under builtin/, never a path that
    leaves it (`builtin:/abs`, `builtin:../..`, a link pointing out). Its files get the same
    pickle check as any folder's."""
    name = source.removeprefix("builtin:")
    path = BUILTIN_DIR / name
    inside = BUILTIN_NAME.fullmatch(name) and path.resolve().parent == BUILTIN_DIR.resolve()
    if not inside or not (path / "model_index.json").is_file():
        known = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "model_index.json").is_file())
        raise UserError("model.source", source,
                        f"no such built-in model; choose one of {', '.join(known) or '(none)'}")
    return path


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "~"))


def _hub_snapshot(repo_id: str, revision: str | None, fetch: Fetch) -> Path:
    """The hub snapshot folder (its name is the commit); offline or `cached`: the local cache only."""
    # Here, not at the top: importing huggingface_hub costs every driver command 0.3 s.
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or fetch == "cached"
    patterns = None if fetch == "all" else CONFIG_PATTERNS
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=offline,
                                      allow_patterns=patterns))
    except Exception as exc:  # noqa: BLE001 - every hub failure means the same to the user
        if fetch == "cached":
            raise NotCached("model.source", repo_id, "not in the local hub cache") from None
        where = "in the local hub cache (HF_HUB_OFFLINE is set)" if offline else "on the hub"
        raise UserError("model.source", repo_id,
                        f"not a folder in the spec's folder and not found {where} ({type(exc).__name__}); "
                        "download it first (hf download ID), check the id and revision, "
                        "or give a local path") from None


def _cached_copy(spec: ModelSpec, configs_only: bool) -> tuple[Path, str]:
    """Copy a remote model once per machine; a file lock keeps actors on one node from racing.

    The cache key includes a fingerprint of the remote listing, so a changed model is copied
    anew; the same fingerprint is the model's revision on the driver and on every worker.
    """
    url = spec.source
    check_reachable(url, spec.storage_options, "model.source")
    fs, root = open_fs(url, spec.storage_options)
    root = root.rstrip("/")
    fs.invalidate_cache(root)  # a listing cached earlier in this process may predate a new upload
    if not fs.isdir(root):
        raise UserError("model.source", url, "no such folder at that URL")
    # Every listed path is confined to the model's folder: a key holding `..` would otherwise be
    # copied outside the cache, on every worker.
    files = {relative_to(root, f, "model.source"): info
             for f, info in fs.find(root, detail=True).items() if info["type"] == "file"}
    refuse_pickles(files, "model.trusted", url, spec.trusted)  # seen in the listing: no download
    revision = _listing_fingerprint(files)
    cache = Path(os.environ.get("SYNTHGEN_CACHE", Path.home() / ".cache" / "synthgen")) / "models"
    key = hashlib.sha256(f"{url}|{revision}".encode()).hexdigest()[:24]
    target = cache / (key + ("-configs" if configs_only else ""))
    cache.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        flock_within(lock.fileno(), CACHE_WAIT_S, "model.source", url,
                     f"the model cache's lock {target}.lock (held while another process copies the model)")
        if not (target / ".complete").exists():
            wanted = [f for f in files if not configs_only or f.endswith(".json")]
            for rel in wanted:
                local = target / rel
                local.parent.mkdir(parents=True, exist_ok=True)
                copy_capped(fs, f"{root}/{rel}", local, _cap(rel, files[rel]), "model.source",
                            f"{url.rstrip('/')}/{rel}")
            (target / ".complete").write_text(revision)
    return target, revision


def _cap(rel: str, info: dict[str, Any]) -> int:
    """A config is small; a weight file is no longer than its listing says (an HTTP listing
    says nothing, and its body may never end: then the weights cap)."""
    if rel.endswith(".json"):
        return CONFIG_CAP
    size = info.get("size")
    return size if isinstance(size, int) and size >= 0 else WEIGHTS_CAP


def _listing_fingerprint(files: dict[str, dict[str, Any]]) -> str:
    """A hash of every file's path, size and etag (or mtime): cheap, and the same everywhere."""
    digest = hashlib.sha256()
    for rel, info in sorted(files.items()):
        stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
        digest.update(f"{rel}|{info.get('size')}|{stamp}\n".encode())
    return "sha256:" + digest.hexdigest()[:16]


# The captions model's folder, and the plan-time check that it is a causal language model.
FIELD = "classes.captions.model"
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def caption_model_folder(spec: JobSpec, fetch: Fetch) -> Path:
    """Resolved like model.source (path, hub id or URL, with model.storage_options)."""
    captions = spec.classes.captions if spec.classes else None
    assert captions is not None, "called for a job with classes.captions only"
    source = ModelSpec(source=captions.model, revision=captions.revision,
                       storage_options=spec.model.storage_options)
    try:
        return resolve_source(source, fetch)[0]
    except NotCached:
        raise
    except UserError as exc:
        raise UserError(FIELD, captions.model, exc.fix) from None


def check_caption_model(spec: JobSpec, fetch: Fetch) -> None:
    """Refuse a captions model whose config names no causal LM (with fetch="cached", a model not
    on this machine is checked by the driver of `run`, which fetches its configs)."""
    if spec.classes is None or spec.classes.captions is None:
        return
    try:
        folder = caption_model_folder(spec, "configs" if fetch == "all" else fetch)
    except NotCached:
        return
    config = read_json(folder / "config.json")
    architectures = config.get("architectures") or []
    if not any(a.endswith(CAUSAL_SUFFIXES) for a in architectures):
        named = ", ".join(architectures) or config.get("_class_name") or "no architecture"
        raise UserError(FIELD, spec.classes.captions.model,
                        f"is not a causal language model (its config.json names {named}); give a "
                        "transformers model with a ...ForCausalLM architecture")
