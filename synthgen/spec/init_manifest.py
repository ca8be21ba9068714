"""An init job's manifest: the source's listing -> one entry per (picked, renamed) class.

The listing (inputs/labeled_keys.py reads it) holds every source image's key by class, and the
source's fingerprint. Here the `classes` section picks and renames classes, each class gets
`per_image` samples per image, and its entries are built as a class manifest's are (templates,
attributes, negative prompts: manifest.class_entry).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.attributes import parse_axes
from synthgen.spec.distributions import describe
from synthgen.spec.init_spec import InitSpec
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest import Manifest, class_entry
from synthgen.spec.manifest_spec import ClassManifest
from synthgen.storage.redact import redact_text


@dataclass(frozen=True)
class InitListing:
    """A labeled source, listed: class names in its order, each class's image keys, and what
    identifies its content (kind, description, fingerprint)."""

    kind: str  # image-folder | parquet | synthgen-output | builtin
    description: str
    class_names: tuple[str, ...]
    keys: tuple[tuple[str, ...], ...]  # keys[label]: that class's images, in listing order
    fingerprint: str

    def summary(self) -> dict[str, Any]:
        return {"source": redact_text(self.description), "kind": self.kind, "fingerprint": self.fingerprint,
                "images": sum(len(k) for k in self.keys)}


def describe_init(init: InitSpec, listed: dict[str, Any]) -> str:
    """An init job's source and settings in words (`synthgen plan`, the card); `listed` is the
    manifest's summary of the listing."""
    return (f"{listed['images']} labeled images of {listed['source']} ({listed['kind']}, fingerprint "
            f"{listed['fingerprint']}), {init.per_image} variation(s) of each, strength "
            f"{describe(init.strength)}, resized by {init.resize}")


def init_manifest(spec: JobSpec, listing: InitListing) -> Manifest:
    """The source's classes (or the subset and names `classes.names` gives) with k per image."""
    assert spec.init is not None
    classes = spec.classes or ClassManifest()
    picked = _picked(classes, listing)
    axes = parse_axes(classes.attributes, "classes.attributes", classes.storage_options)
    entries = []
    for label, (source_name, name) in enumerate(picked):
        keys = listing.keys[listing.class_names.index(source_name)]
        entry = class_entry(classes, label, {"name": name, "count": len(keys) * spec.init.per_image}, axes)
        entries.append(replace(entry, inits=keys, init_label=source_name))
    return Manifest(entries=tuple(entries), class_names=tuple(name for _, name in picked),
                    init=listing.summary())


def _picked(classes: ClassManifest, listing: InitListing) -> list[tuple[str, str]]:
    """(source name, name in the output) of every class the job uses, in the source's order
    unless `classes.names` lists an order of its own."""
    names = classes.names
    if names is None:
        picked = [(n, n) for n in listing.class_names]
    elif isinstance(names, dict):
        picked = [(str(k), str(v)) for k, v in names.items()]
    else:
        picked = [(str(n), str(n)) for n in names]
    for source_name, _ in picked:
        if source_name not in listing.class_names:
            raise UserError("classes.names", source_name,
                            f"not a class of {listing.description} (its classes: "
                            f"{', '.join(listing.class_names[:20])}); pick among them")
    renamed = [name for _, name in picked]
    dupes = sorted({n for n in renamed if renamed.count(n) > 1})
    if dupes:
        raise UserError("classes.names", dupes[0], "class names must be unique")
    for source_name, _ in picked:
        if not listing.keys[listing.class_names.index(source_name)]:
            raise UserError("init.source", listing.description,
                            f"class {source_name!r} has no images; add some or leave the class out "
                            "(classes.names lists the classes to use)")
    return picked
