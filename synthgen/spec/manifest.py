"""Class and prompt manifests, inline or from a file, resolved into a fixed list of entries.

An entry is one class or one prompt with its sample count. The plan expands entries into
sample rows lazily, so a manifest is read once, on the driver, and stored in job.json:
resume never depends on the manifest file still being there or unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.job_spec import ClassManifest, JobSpec, PromptManifest
from synthgen.spec.manifest_files import read_rows


@dataclass(frozen=True)
class Entry:
    """One class or prompt; its samples cycle through `prompts` in order."""

    label: int
    label_name: str | None
    count: int
    model_label: int | None = None
    prompts: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    negative_prompt: str | None = None
    # With `init`: the keys of the class's source images (sample k varies image k // per_image),
    # and the class's name in the source (label_name may rename it).
    inits: tuple[str, ...] = ()
    init_label: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Without init, the fields of before init existed: their job_ids stay."""
        data = asdict(self)
        if not self.inits:
            del data["inits"], data["init_label"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(**{**data, "prompts": tuple(data["prompts"]), "templates": tuple(data["templates"]),
                      "inits": tuple(data.get("inits", ()))})


@dataclass(frozen=True)
class Manifest:
    """Resolved entries plus the ClassLabel names (index = label)."""

    entries: tuple[Entry, ...]
    class_names: tuple[str, ...] = field(default=())
    # With `init`: the source's kind, description, image count and fingerprint (its listing with
    # sizes and ETags or mtimes, or a content hash), part of job_id through the manifest.
    init: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"class_names": list(self.class_names), "entries": [e.to_json() for e in self.entries]}
        return data if self.init is None else {**data, "init": self.init}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        entries = tuple(Entry.from_json(e) for e in data["entries"])
        return cls(entries=entries, class_names=tuple(data["class_names"]), init=data.get("init"))


def resolve_manifest(spec: JobSpec) -> Manifest:
    """Expand the spec's class or prompt manifest into entries, reading a source file if any.
    A job with `init` lists its source first (dataset/init_listing.py, then init_manifest.py)."""
    if spec.init is not None:
        raise UserError("init.source", spec.init.source,
                        "an init job's manifest comes from its source listing; plan it with synthgen plan")
    manifest = _resolve_classes(spec.classes) if spec.classes else _resolve_prompts(spec.prompts)
    if not manifest.entries:
        section = "classes" if spec.classes else "prompts"
        raise UserError(f"{section}.source", "(empty)", "the manifest has no rows; add some")
    return manifest


def _resolve_classes(spec: ClassManifest) -> Manifest:
    rows = _class_rows(spec)
    names = [str(row.get("name", "")).strip() for row in rows]
    for i, name in enumerate(names):
        if not name:
            raise UserError(f"classes[{i}].name", rows[i].get("name"), "every class needs a name")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError("classes.names", dupes[0], "class names must be unique")
    entries = tuple(_class_entry(spec, i, row) for i, row in enumerate(rows))
    return Manifest(entries=entries, class_names=tuple(names))


def _class_rows(spec: ClassManifest) -> list[dict[str, Any]]:
    if spec.names is not None:
        return [{"name": n} for n in spec.names]
    if spec.entries is not None:
        return [e.model_dump(exclude_none=True) for e in spec.entries]
    return read_rows(spec.source, spec.storage_options, "classes.source", text_column="name")


def _class_entry(spec: ClassManifest, index: int, row: dict[str, Any]) -> Entry:
    name = str(row["name"]).strip()
    field_name = f"classes[{index}]"
    count = _count(row.get("count"), spec.count, f"{field_name}.count")
    own = _prompt_list(row.get("prompts"))
    if own:
        prompts, templates = own, ("",) * len(own)
    elif spec.templates:
        prompts = tuple(t.replace("{name}", name) for t in spec.templates)
        templates = tuple(spec.templates)
    else:
        prompts, templates = (), ()
    model_label = row.get("model_label")
    if model_label is not None and str(model_label).strip() != "":
        model_label = _int(model_label, f"{field_name}.model_label")
    else:
        model_label = None
    negative = row.get("negative_prompt") or spec.negative_prompt
    return Entry(index, name, count, model_label, prompts, templates, negative)


def _resolve_prompts(spec: PromptManifest) -> Manifest:
    if spec.items is not None:
        rows = [item.model_dump(exclude_none=True) for item in spec.items]
    else:
        rows = read_rows(spec.source, spec.storage_options, "prompts.source", text_column="prompt")
    labels = [_label_text(row.get("label")) for row in rows]
    names = tuple(dict.fromkeys(label for label in labels if label is not None))
    entries = []
    for i, row in enumerate(rows):
        prompt = str(row.get("prompt") or "").strip()
        if not prompt:
            raise UserError(f"prompts[{i}].prompt", row.get("prompt"), "every row needs a prompt")
        label = names.index(labels[i]) if labels[i] is not None else -1
        negative = row.get("negative_prompt") or spec.negative_prompt
        count = _count(row.get("count"), spec.count, f"prompts[{i}].count")
        entries.append(Entry(label, labels[i], count, None, (prompt,), ("",), negative))
    return Manifest(entries=tuple(entries), class_names=names)


def _label_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _count(value: Any, default: int, field_name: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    count = _int(value, field_name)
    if count <= 0:
        raise UserError(field_name, value, "a count must be a positive integer")
    return count


def _int(value: Any, field_name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if number != number or number != int(number):
        raise UserError(field_name, value, "must be an integer")
    return int(number)


def _prompt_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [p for p in value.split("|")]
    return tuple(str(p).strip() for p in value if str(p).strip())
