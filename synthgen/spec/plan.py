"""The plan: manifest entries -> sample rows -> shards, with seeds and the job id.

Rows are never materialised for the whole job: a shard is a range of sample_ids and its rows
are computed on demand from the entries through the arithmetic sample order (sample_order.py),
so planning a million samples costs no memory. Every shard belongs to one split.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

import numpy as np

from synthgen.errors import UserError
from synthgen.spec.fingerprint import data_fields
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.load import validate_spec
from synthgen.spec.manifest import Entry, Manifest, compact_json, resolve_manifest
from synthgen.spec.sample_draws import check_placeholders, draw_sample
from synthgen.spec.sample_order import SampleOrder, SplitLayout, ordered_splits
from synthgen.spec.strict import check_bounds


@dataclass(frozen=True)
class Sample:
    """One planned image: everything needed to generate it and label it."""

    sample_id: int
    seed: int
    label: int
    label_name: str | None
    prompt: str | None
    template: str | None
    negative_prompt: str | None
    model_label: int | None
    split: str = "train"
    # Drawn per sample (spec/sample_draws.py); None on a sample built outside a plan: the
    # sampler's fixed values then apply.
    guidance_scale: float | None = None
    steps: int | None = None
    attributes: dict[str, str] | None = None  # axis -> value, the axes of the sample's entry
    caption_id: int | None = None
    # init (img2img): the source image's key, its class name in the source, and the strength
    init_id: str | None = None
    init_label: str | None = None
    strength: float | None = None


@dataclass(frozen=True)
class Shard:
    """A contiguous range of sample_ids, all of one split."""

    index: int
    start: int
    stop: int
    split: str = "train"

    @property
    def size(self) -> int:
        return self.stop - self.start


def sample_seed(job_seed: int, sample_id: int, draw: int = 0) -> int:
    """A 63-bit seed that depends on (job seed, sample_id[, draw]) alone."""
    key = f"{job_seed}:{sample_id}" + (f":{draw}" if draw else "")
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True)
class Plan:
    spec: JobSpec
    manifest: Manifest
    captions: Mapping[int, tuple[str, ...]] | None = None  # label -> its committed captions
    recorded_id: str | None = None  # the job_id job.json holds: status never rehashes a manifest

    @classmethod
    def build(cls, spec: JobSpec, manifest: Manifest | None = None) -> Plan:
        manifest = manifest or resolve_manifest(spec)
        check_placeholders(spec, manifest)
        plan = cls(spec=spec, manifest=manifest)
        check_bounds(plan)
        for split in plan.order.splits:
            if split.size == 0:  # only a split the spec names can be empty
                raise UserError(f"output.splits.{split.name}", (spec.output.splits or {})[split.name],
                                f"gives no sample of the {plan.order.total}; raise it or the counts")
        return plan

    def to_json(self) -> dict[str, Any]:
        """The job as data: its spec and resolved manifest (job.json and submit's payload)."""
        return {"spec": self.spec.model_dump(mode="json"), "manifest": self.manifest.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """A stored plan (job.json, a submitted job) with the same bounds as a new one: an edited
        count must not make a reader loop for ever."""
        plan = cls(spec=validate_spec(data["spec"]), manifest=Manifest.from_json(data["manifest"]))
        check_bounds(plan)
        return plan

    @cached_property
    def order(self) -> SampleOrder:
        output = self.spec.output
        return SampleOrder.build(self.manifest.counts(),
                                 ordered_splits(output.splits or {"train": 1.0}),
                                 output.order == "interleaved")

    @property
    def total(self) -> int:
        return self.order.total

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(split.name for split in self.order.splits)

    @cached_property
    def _first_shards(self) -> list[int]:
        """_first_shards[j]: the index of split j's first shard; the last item is the shard count."""
        size = self.spec.output.shard_size
        return [0, *accumulate((s.size + size - 1) // size for s in self.order.splits)]

    @property
    def num_shards(self) -> int:
        return self._first_shards[-1]

    @cached_property
    def job_id(self) -> str:
        """Fingerprint of everything that changes the data; execution settings are left out."""
        if self.recorded_id is not None:
            return self.recorded_id
        digest = hashlib.sha256(b'{"manifest":')  # json of {"manifest": ..., "spec": ...}, keys sorted
        for piece in self.manifest.canonical_json():
            digest.update(piece.encode())
        digest.update(f',"spec":{compact_json(data_fields(self.spec))}}}'.encode())
        return digest.hexdigest()[:16]

    def shard(self, index: int) -> Shard:
        if not 0 <= index < self.num_shards:
            raise IndexError(f"shard {index} is outside 0..{self.num_shards - 1}")
        j = bisect.bisect_right(self._first_shards, index) - 1
        split, size = self.order.splits[j], self.spec.output.shard_size
        start = split.start + (index - self._first_shards[j]) * size
        return Shard(index, start, min(start + size, split.start + split.size), split.name)

    def shards(self) -> list[Shard]:
        return [self.shard(i) for i in range(self.num_shards)]

    def shard_of(self, sample_id: int) -> Shard:
        """The shard that holds a sample_id."""
        split = self.order.split_of(sample_id)
        j = self.order.splits.index(split)
        return self.shard(self._first_shards[j] + (sample_id - split.start) // self.spec.output.shard_size)

    def samples(self, shard: Shard) -> list[Sample]:
        return [self.sample(i) for i in range(shard.start, shard.stop)]

    def sample(self, sample_id: int) -> Sample:
        split, entry_index, k = self.order.locate(sample_id)
        entry = self.manifest.entries[entry_index]
        seed = sample_seed(self.spec.seed, sample_id)
        drawn = draw_sample(entry, k, seed, self.spec, self.captions)
        return Sample(
            sample_id=sample_id,
            seed=seed,
            label=entry.label,
            label_name=entry.label_name,
            prompt=drawn.prompt,
            template=drawn.template,
            negative_prompt=drawn.negative_prompt,
            model_label=self.model_label(entry),
            split=split,
            guidance_scale=drawn.guidance_scale,
            steps=drawn.steps,
            attributes=drawn.attributes,
            caption_id=drawn.caption_id,
            init_id=drawn.init_id,
            init_label=drawn.init_label,
            strength=drawn.strength,
        )

    def model_label(self, entry: Entry) -> int | None:
        """The entry's own model_label; with `label_mapping: position`, its label index."""
        by_position = self.spec.classes is not None and self.spec.classes.label_mapping == "position"
        return entry.label if entry.model_label is None and by_position else entry.model_label

    def per_class(self, shards: list[Shard] | None = None) -> dict[str, int]:
        """Sample counts per class name over the given shards (all by default), with no sample
        visited: runs of consecutive shards are counted arithmetically (SplitLayout.counts_in)."""
        if shards is None:  # the whole job: from the entries, never from its shards or samples
            counts = np.array(self.manifest.counts(), dtype=np.int64)
        else:
            counts = np.zeros(len(self.manifest.entries), dtype=np.int64)
            for split, start, stop in self._runs(shards):
                counts += split.counts_in(start, stop)
        named: dict[str, int] = {}
        for label_name, count in zip(self.manifest.label_names(), counts.tolist(), strict=True):
            name = label_name or "(unlabeled)"
            named[name] = named.get(name, 0) + count
        return named

    def per_split(self) -> dict[str, int]:
        return {split.name: split.size for split in self.order.splits}

    def _runs(self, shards: list[Shard]) -> list[tuple[SplitLayout, int, int]]:
        """Consecutive shards of one split merged into (split layout, start, stop) ranges."""
        runs: list[tuple[SplitLayout, int, int]] = []
        for shard in sorted(shards, key=lambda s: s.start):
            if runs and runs[-1][2] == shard.start and runs[-1][0].name == shard.split:
                runs[-1] = (runs[-1][0], runs[-1][1], shard.stop)
            else:
                runs.append((self.order.split_of(shard.start), shard.start, shard.stop))
        return runs

    def summary(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "samples": self.total,
            "shards": self.num_shards,
            "shard_size": self.spec.output.shard_size,
            "classes": len(self.manifest.class_names),
            "per_class": self.per_class(),
            "order": self.spec.output.order,
            "splits": self.per_split(),
            **({"init": self.manifest.init} if self.manifest.init else {}),
        }


# What differs between two jobs: the dotted spec fields (then manifest fields) that change the
# data, as `key: old -> new`. The fingerprint's fields are redacted (storage/redact.py), so no
# credential is ever printed.
MAX_VALUE = 60  # characters of a value shown, the rest elided
MAX_CHANGES = 8  # fields listed, then "and N more"
ABSENT = object()


def plan_diff(old: Plan, new: Plan) -> str:
    """`sampler.steps: 10 -> 20, classes.count: 100 -> 200` for the fields that differ."""
    changes = dotted_changes(data_fields(old.spec), data_fields(new.spec))  # redacted already
    if not changes:
        changes = dotted_changes(old.manifest.to_json(), new.manifest.to_json(), "manifest.")
    if not changes:
        return ("no spec or manifest field differs: another synthgen version fingerprinted that job "
                "(see the versions in its job.json)")
    shown = [f"{key}: {_show(a)} -> {_show(b)}" for key, a, b in changes[:MAX_CHANGES]]
    more = len(changes) - MAX_CHANGES
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def dotted_changes(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs; dicts are walked, any
    other value (lists included) is compared whole. A key missing on one side shows as absent."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            changes += dotted_changes(old.get(key, ABSENT), new.get(key, ABSENT), f"{prefix}{key}.")
        return changes
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."
