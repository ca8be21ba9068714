"""LLM-written captions: the seed of each candidate, its instruction, and which candidates a class
keeps. Torch-free: the actors' caption writer (engine/captions.py) and the plan share it.

Candidate i of a class (i = 0, 1, 2, ...) is generated with the seed
`blake2b(f"{job_seed}:caption:{class_name}:{i}", digest_size=8) >> 1`, from the instruction with
{name}, {description} and each attribute axis filled (an axis value drawn with u(that seed, axis),
as in spec/sample_draws.py). A class keeps, in candidate order, the first `per_class` candidates
that are non-empty once stripped, at most `max_chars` long and not a duplicate of one it kept:
caption_id j is the j-th kept one. A dropped candidate is replaced by the next index, up to
per_class * max_draws candidates; then the job fails with a message naming the class.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from synthgen.spec.manifest import Entry
from synthgen.spec.manifest_spec import CaptionsSpec
from synthgen.spec.sample_draws import fill, pick, unit


def caption_seed(job_seed: int, class_name: str, index: int) -> int:
    key = f"{job_seed}:caption:{class_name}:{index}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


def instruction(spec: CaptionsSpec, entry: Entry, seed: int) -> str:
    values = {name: pick([v for v, _ in vs], unit(seed, name), [w for _, w in vs])
              for name, vs in entry.attributes}
    values.update(name=entry.label_name or "", description=entry.description or "")
    return fill(spec.instruction, values)


@dataclass
class ClassCaptions:
    """The captions a class keeps, candidate by candidate (see the module docstring)."""

    spec: CaptionsSpec
    kept: list[tuple[int, int, str]] = field(default_factory=list)  # (candidate index, seed, text)
    tried: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"empty": 0, "too long": 0, "duplicate": 0})

    @property
    def needed(self) -> int:
        """How many more candidates to generate now (0: done, or out of draws)."""
        limit = self.spec.per_class * self.spec.max_draws
        return max(0, min(self.spec.per_class - len(self.kept), limit - self.tried))

    def offer(self, seed: int, text: str) -> None:
        """Candidate number `tried`: kept, or counted as dropped."""
        index, self.tried = self.tried, self.tried + 1
        text = text.strip()
        reason = ("empty" if not text else "too long" if len(text) > self.spec.max_chars
                  else "duplicate" if any(text == t for _, _, t in self.kept) else None)
        if reason:
            self.dropped[reason] += 1
        elif len(self.kept) < self.spec.per_class:
            self.kept.append((index, seed, text))

    def complete(self) -> bool:
        return len(self.kept) == self.spec.per_class

    def shortfall(self, class_name: str) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.dropped.items() if n)
        return (f"class {class_name!r}: only {len(self.kept)} of {self.spec.per_class} usable captions after "
                f"{self.tried} draws (dropped: {reasons}); raise classes.captions.max_draws or max_chars, "
                "lower per_class, or reword the instruction")
