"""The one reader of a model folder's JSON configs (model_index.json, config.json, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from synthgen.errors import UserError
from synthgen.storage.filesystem import CONFIG_CAP, read_local


def read_json(path: Path) -> dict[str, Any]:
    """A config file as a dict; {} when the file is not there. A file that is not a JSON
    object (truncated, not UTF-8, a list) is the model's mistake, named with its path."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(read_local(path, CONFIG_CAP, "model.source").decode("utf-8-sig"))
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


# What is known of a model before loading it: read from its config files, no weights.
@dataclass(frozen=True)
class ModelInfo:
    """What the model's config files say, read without loading any weights."""

    family: str
    path: Path
    source: str
    revision: str
    scheduler_config: dict[str, Any]
    sample_size: int
    channels: int
    num_class_embeds: int | None = None
    null_class: int | None = None
    guidable: bool = False
    id2label: dict[int, str] = field(default_factory=dict)
    license: str | None = None
    # Latent and text-to-image models (defaults describe a pixel-space UNet):
    prompted: bool = False  # text-to-image: every sample needs a prompt
    negative_prompts: bool = False  # the model takes negative prompts
    vae_scale_factor: int = 1  # pixels per latent cell
    size_multiple: int | None = None  # output sizes must be multiples of this; None: fixed size
    label_fallback: bool = True  # a class id may default to the entry's label index
    pipeline: str | None = None  # the diffusers pipeline class named in model_index.json
    img2img: bool = True  # can vary init images (the pipeline family: if diffusers has its img2img)

    @property
    def image_channels(self) -> int:
        """Channels of the images the model takes in (img2img): a UNet's own, else RGB for a VAE."""
        return self.channels if self.family == "unet" else 3

    @property
    def class_conditional(self) -> bool:
        return self.num_class_embeds is not None

    def model_label(self, model_label: int | None, label_name: str | None, label: int) -> int | None:
        return self.class_id(model_label, label_name, label)[0]

    def class_id(self, model_label: int | None, label_name: str | None,
                 label: int) -> tuple[int | None, str]:
        """The model's class id and where it came from: the entry's `model_label`, else its name
        in `id2label`, else its `position` (only for models with no id2label; `label_mapping:
        position` sets model_label to the position in the plan).

        An id2label value may list synonyms separated by commas ("tench, Tinca tinca"); any of
        them names the class. Without a match, models whose labels are names give None.
        """
        if model_label is not None:
            return model_label, "model_label"
        class_id = self.label_ids.get(label_name) if label_name is not None else None
        if class_id is not None:
            return class_id, "id2label"
        return (label, "position") if self.label_fallback else (None, "unknown")

    @cached_property
    def label_ids(self) -> dict[str, int]:
        """Every name and synonym of id2label -> its class id (the first id wins): one lookup
        per class, so checking a million-class manifest is linear."""
        ids: dict[str, int] = {}
        for class_id, names in self.id2label.items():
            for name in (names, *(n.strip() for n in names.split(","))):
                ids.setdefault(name, class_id)
        return ids
