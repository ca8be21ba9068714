"""Class and prompt manifests, inline or from a file, resolved into a fixed list of entries.

An entry is one class or one prompt with its sample count. The plan expands entries into
sample rows lazily, so a manifest is read once, on the driver, and stored in job.json:
resume never depends on the manifest file still being there or unchanged.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.attributes import Axis, merge_axes, parse_axes
from synthgen.spec.distributions import Choice
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest_files import read_rows
from synthgen.spec.manifest_spec import ClassManifest, PromptManifest
from synthgen.spec.strict import MAX_COUNT


@dataclass(frozen=True)
class Entry:
    """One class or prompt; its samples cycle through `prompts` in order, and draw the rest
    (attribute values, a synonym, a negative prompt) from their seeds: spec/sample_draws.py."""

    label: int
    label_name: str | None
    count: int
    model_label: int | None = None
    prompts: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    negative_prompt: str | None = None
    negative_prompts: tuple[str, ...] = ()  # a choice, drawn per sample (negative_prompt is None)
    attributes: tuple[Axis, ...] = ()
    description: str | None = None
    synonyms: tuple[str, ...] = ()
    # With `init`: the keys of the class's source images (sample k varies image k // per_image),
    # and the class's name in the source (label_name may rename it).
    inits: tuple[str, ...] = ()
    init_label: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As asdict gives it, without asdict's deep copies (a million entries in job.json); fields
        added later are left out while empty, so older jobs keep their job_id."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v
                for name in _ENTRY_FIELDS if name not in LATER_FIELDS or getattr(self, name)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        axes = tuple((name, tuple((v, w) for v, w in values)) for name, values in data.get("attributes", ()))
        listed = ("prompts", "templates", "negative_prompts", "synonyms", "inits")
        tuples = {k: tuple(data.get(k, ())) for k in listed}
        return cls(**{**data, **tuples, "attributes": axes})


LATER_FIELDS = ("negative_prompts", "attributes", "description", "synonyms", "inits", "init_label")


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


@dataclass(frozen=True)
class Manifest:
    """Resolved entries plus the ClassLabel names (index = label)."""

    entries: Sequence[Entry]  # a tuple, or an EntryTable read from the output (manifest_table.py)
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
        for i, entry in enumerate(entries):  # a record read back gets the bounds a spec gets
            _count(entry.count, 0, f"manifest.entries[{i}].count")
        return cls(entries=entries, class_names=tuple(data["class_names"]), init=data.get("init"))

    def canonical_json(self) -> Iterator[str]:
        """`to_json()` as compact JSON with sorted keys, in pieces of BATCH entries: job_id
        hashes a million entries without holding their text (or their Entry objects) at once."""
        yield '{"class_names":' + compact_json(list(self.class_names)) + ',"entries":['
        batch: list[dict[str, Any]] = []
        for i, entry in enumerate(self.entries):
            batch.append(entry.to_json())
            if len(batch) == BATCH:
                yield ("," if i >= BATCH else "") + compact_json(batch)[1:-1]
                batch = []
        if batch:
            yield ("," if len(self.entries) > len(batch) else "") + compact_json(batch)[1:-1]
        yield "]" + ("" if self.init is None else ',"init":' + compact_json(self.init)) + "}"

    def counts(self) -> list[int]:
        """Each entry's sample count; a manifest read from an output reads one column."""
        return self._column("count")

    def label_names(self) -> list[str | None]:
        return self._column("label_name")

    def _column(self, name: str) -> list[Any]:
        column = getattr(self.entries, "column", None)  # an EntryTable: no Entry is built
        return column(name) if column else [getattr(entry, name) for entry in self.entries]


BATCH = 4096


def compact_json(value: Any) -> str:
    """The fingerprint's JSON form (plan.job_id): compact, keys sorted."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def resolve_manifest(spec: JobSpec) -> Manifest:
    """Expand the spec's class or prompt manifest into entries, reading a source file if any.
    A job with `init` lists its source instead (inputs/labeled_keys.py)."""
    if spec.init is not None:
        raise UserError("init.source", spec.init.source,
                        "an init job's manifest comes from its source listing; plan it with synthgen plan")
    if spec.classes:
        manifest = _resolve_classes(spec.classes)
    else:
        assert spec.prompts is not None  # JobSpec's validator: classes, prompts or init
        manifest = _resolve_prompts(spec.prompts)
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
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)  # linear, not names.count
    if dupes:
        raise UserError("classes.names", dupes[0], "class names must be unique")
    axes = parse_axes(spec.attributes, "classes.attributes", spec.storage_options)
    entries = tuple(class_entry(spec, i, row, axes) for i, row in enumerate(rows))
    return Manifest(entries=entries, class_names=tuple(names))


def _class_rows(spec: ClassManifest) -> list[dict[str, Any]]:
    if spec.names is not None:
        return [{"name": n} for n in spec.names]
    if spec.entries is not None:
        return [e.model_dump(exclude_none=True) for e in spec.entries]
    assert spec.source is not None  # the section's validator: names, entries or source
    return read_rows(spec.source, spec.storage_options, "classes.source", text_column="name")


def class_entry(spec: ClassManifest, index: int, row: dict[str, Any], axes: tuple[Axis, ...]) -> Entry:
    """Class `index` from its row (name, count, ...) and the section's templates and axes; an
    init job's classes (spec/init_manifest.py) are built by it too."""
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
    negative, negatives = _negative(row.get("negative_prompt") or spec.negative_prompt)
    own_axes = parse_axes(row.get("attributes"), f"{field_name}.attributes", spec.storage_options)
    description = str(row.get("description") or "").strip() or None
    return Entry(index, name, count, model_label, prompts, templates, negative, negatives,
                 merge_axes(axes, own_axes), description, _prompt_list(row.get("synonyms")))


def _negative(value: Any) -> tuple[str | None, tuple[str, ...]]:
    """A fixed negative prompt, or the choices one is drawn from per sample."""
    if isinstance(value, dict):  # an entry's choice, as model_dump wrote it
        value = Choice.model_validate(value)
    if isinstance(value, Choice):
        return None, tuple(value.choice)
    return value or None, ()


def _resolve_prompts(spec: PromptManifest) -> Manifest:
    if spec.items is not None:
        rows = [item.model_dump(exclude_none=True) for item in spec.items]
    else:
        assert spec.source is not None  # the section's validator: items or source
        rows = read_rows(spec.source, spec.storage_options, "prompts.source", text_column="prompt")
    axes = parse_axes(spec.attributes, "prompts.attributes", spec.storage_options)
    labels = [_label_text(row.get("label")) for row in rows]
    names = tuple(dict.fromkeys(label for label in labels if label is not None))
    position = {name: i for i, name in enumerate(names)}  # not names.index: quadratic
    entries = []
    for i, (row, text) in enumerate(zip(rows, labels, strict=True)):
        prompt = str(row.get("prompt") or "").strip()
        if not prompt:
            raise UserError(f"prompts[{i}].prompt", row.get("prompt"), "every row needs a prompt")
        label = position[text] if text is not None else -1
        negative, negatives = _negative(row.get("negative_prompt") or spec.negative_prompt)
        count = _count(row.get("count"), spec.count, f"prompts[{i}].count")
        entries.append(Entry(label, labels[i], count, None, (prompt,), ("",), negative, negatives, axes))
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
    if not 0 < count <= MAX_COUNT:
        raise UserError(field_name, value, f"a count must be a positive integer up to {MAX_COUNT:,}")
    return count


def _int(value: Any, field_name: str) -> int:
    """An integer from a manifest cell: never a boolean, NaN or an infinity."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise UserError(field_name, value, "must be an integer")
    return int(number)


def _prompt_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [p for p in value.split("|")]
    return tuple(str(p).strip() for p in value if str(p).strip())
