"""The plan: manifest entries -> sample rows -> shards, with seeds and the job id.

Rows are never materialised for the whole job: a shard is a range of sample_ids and its rows
are computed on demand from the entries, so planning a million samples costs no memory.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

from synthgen.spec.bounds import check_bounds
from synthgen.spec.job_spec import JobSpec, data_fields
from synthgen.spec.load import validate_spec
from synthgen.spec.manifest import Manifest, resolve_manifest


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


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int

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

    @classmethod
    def build(cls, spec: JobSpec, manifest: Manifest | None = None) -> Plan:
        plan = cls(spec=spec, manifest=manifest or resolve_manifest(spec))
        check_bounds(plan)
        return plan

    def to_json(self) -> dict[str, Any]:
        """The job as data: its spec and resolved manifest (job.json and submit's payload)."""
        return {"spec": self.spec.model_dump(mode="json"), "manifest": self.manifest.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(spec=validate_spec(data["spec"]), manifest=Manifest.from_json(data["manifest"]))

    @cached_property
    def offsets(self) -> list[int]:
        """offsets[i] is the first sample_id of entry i; the last item is the total."""
        return [0, *accumulate(e.count for e in self.manifest.entries)]

    @property
    def total(self) -> int:
        return self.offsets[-1]

    @property
    def num_shards(self) -> int:
        size = self.spec.output.shard_size
        return (self.total + size - 1) // size

    @cached_property
    def job_id(self) -> str:
        """Fingerprint of everything that changes the data; execution settings are left out."""
        payload = {"spec": data_fields(self.spec), "manifest": self.manifest.to_json()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def shard(self, index: int) -> Shard:
        size = self.spec.output.shard_size
        return Shard(index, index * size, min((index + 1) * size, self.total))

    def shards(self) -> list[Shard]:
        return [self.shard(i) for i in range(self.num_shards)]

    def samples(self, shard: Shard) -> list[Sample]:
        return [self.sample(i) for i in range(shard.start, shard.stop)]

    def sample(self, sample_id: int) -> Sample:
        entry_index = bisect.bisect_right(self.offsets, sample_id) - 1
        entry = self.manifest.entries[entry_index]
        k = sample_id - self.offsets[entry_index]
        prompt = entry.prompts[k % len(entry.prompts)] if entry.prompts else None
        template = entry.templates[k % len(entry.templates)] if entry.templates else None
        return Sample(
            sample_id=sample_id,
            seed=sample_seed(self.spec.seed, sample_id),
            label=entry.label,
            label_name=entry.label_name,
            prompt=prompt,
            template=template or None,
            negative_prompt=entry.negative_prompt,
            model_label=entry.model_label,
        )

    def per_class(self, shards: list[Shard] | None = None) -> dict[str, int]:
        """Sample counts per class name over the given shards (all by default), from ranges."""
        counts: Counter[str] = Counter()
        if shards is None:  # the whole job: from the entries, never from its shards or samples
            for entry in self.manifest.entries:
                counts[entry.label_name or "(unlabeled)"] += entry.count
            return dict(counts)
        for shard in shards:
            self._count_range(counts, shard.start, shard.stop)
        return dict(counts)

    def _count_range(self, counts: Counter[str], start: int, stop: int) -> None:
        first = bisect.bisect_right(self.offsets, start) - 1
        for i in range(first, len(self.manifest.entries)):
            lo, hi = max(start, self.offsets[i]), min(stop, self.offsets[i + 1])
            if lo >= stop:
                break
            name = self.manifest.entries[i].label_name or "(unlabeled)"
            counts[name] += hi - lo

    def summary(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "samples": self.total,
            "shards": self.num_shards,
            "shard_size": self.spec.output.shard_size,
            "classes": len(self.manifest.class_names),
            "per_class": self.per_class(),
        }
