"""The one reader of a model folder's JSON configs (model_index.json, config.json, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthgen.errors import UserError


def read_json(path: Path) -> dict[str, Any]:
    """A config file as a dict; {} when the file is not there. A file that is not a JSON
    object (truncated, not UTF-8, a list) is the model's mistake, named with its path."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError("model.source", str(path), f"is not valid JSON ({exc}); fix or "
                        "re-download the model") from None
    if not isinstance(data, dict):
        raise UserError("model.source", str(path), f"holds a {type(data).__name__}, not a JSON "
                        "object; fix or re-download the model")
    return data


def component(index: dict[str, Any], name: str) -> tuple[str, str] | None:
    """(library, class name) that model_index.json gives for a component, if any."""
    value = index.get(name)
    if isinstance(value, list) and len(value) == 2 and all(value):
        return value[0], value[1]
    return None


def pipeline_index(path: Path, source: str, needs: tuple[str, ...]) -> dict[str, Any]:
    """model_index.json, checked to name the components an adapter loads."""
    index = read_json(path / "model_index.json")
    missing = [name for name in needs if not component(index, name) or not (path / name).is_dir()]
    if missing:
        raise UserError("model.source", source,
                        f"the pipeline folder lacks {', '.join(missing)}; is it a complete diffusers model?")
    return index


def scheduler_config(path: Path) -> dict[str, Any]:
    return read_json(path / "scheduler" / "scheduler_config.json")


def vae_scale_factor(vae_config: dict[str, Any]) -> int:
    """Pixels per latent cell: the VAE halves the size once per block but the last."""
    return 2 ** (len(vae_config.get("block_out_channels") or (0, 0, 0, 0)) - 1)


def square(size: int | list[int] | tuple[int, ...] | None, default: int) -> int:
    """A config's sample_size (an int, or a pair whose first item we use)."""
    if size is None:
        return default
    return size if isinstance(size, int) else int(size[0])
