"""ImageFolder class folders whose sorted order is synthgen's label order, and their classes.json.

Hugging Face `imagefolder` and torchvision's `ImageFolder` number classes by sorting the folder
names. Plain class names sort their own way (`one` before `zero`), which would renumber every
label; a zero-padded id prefix (`00_zero`, `01_one`) makes the sorted order the label order, so
both readers give synthgen's ids. `classes.json` (id -> name) says the mapping either way.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from synthgen.errors import UserError
from synthgen.storage.paths import confine

NamingStyle = Literal["prefixed", "plain"]
NAMING_STYLES: tuple[NamingStyle, ...] = ("prefixed", "plain")
UNLABELED = "unlabeled"  # sorts after every prefixed folder, so it takes the next id
CLASSES_FILE = "classes.json"

log = logging.getLogger("synthgen")


def class_folders(class_names: tuple[str, ...], unlabeled: bool,
                  style: NamingStyle = "prefixed") -> dict[int, str]:
    """label -> folder name; unlabeled rows (label -1) go to `unlabeled` when there are any."""
    if style not in NAMING_STYLES:
        raise UserError("--names", style, f"choose one of {', '.join(NAMING_STYLES)}")
    width = max(2, len(str(len(class_names) - 1)))
    folders = {i: _safe(name, i) if style == "plain" else f"{i:0{width}d}_{_safe(name, i)}"
               for i, name in enumerate(class_names)}
    if unlabeled:
        folders[-1] = UNLABELED
    seen: dict[str, int] = {}
    for label, folder in folders.items():
        if folder in seen:
            raise UserError("class name", folder, f"labels {seen[folder]} and {label} would share "
                            "one folder; rename one class")
        seen[folder] = label
    if style == "plain":
        _warn_if_renumbered(folders)
    return folders


def classes_json(class_names: tuple[str, ...]) -> dict[str, str]:
    """What classes.json holds: synthgen's label id (as a JSON key) -> class name."""
    return {str(i): name for i, name in enumerate(class_names)}


def _warn_if_renumbered(folders: dict[int, str]) -> None:
    labeled = [folders[label] for label in sorted(folders) if label >= 0]
    order = sorted(labeled)
    moved = [(folder, label, order.index(folder)) for label, folder in enumerate(labeled)
             if order.index(folder) != label]
    if moved:
        folder, label, read_as = moved[0]
        log.warning("with --names plain the folders sort in another order than the labels: "
                    "ImageFolder readers number %d of %d classes differently (e.g. %r, label %d, "
                    "reads as %d); map them back with %s, or export without --names plain",
                    len(moved), len(labeled), folder, label, read_as, CLASSES_FILE)


def _safe(name: str, label: int) -> str:
    text = re.sub(r"[/\\\x00]", "_", name).strip()
    return confine(text, "class name") if text not in ("", ".", "..") else f"class-{label}"
