"""Where each sample sits: sample_id -> (split, manifest entry, index within the entry).

Samples are laid out split by split (each split a contiguous sample_id range, so that a shard
belongs to one split), and within a split in one of two orders:
- `by_class`: entry after entry, as the manifest lists them;
- `interleaved`: the entry-major positions visited by a Weyl step, n = (s * a) mod N, with a the
  integer nearest N/phi that is coprime with N. Any window of consecutive sample ids then lands
  evenly over the entries (the three-gap theorem), so every shard and every streaming prefix holds
  the classes in proportion to their counts.
Both are arithmetic: a lookup costs O(log entries) and no list of samples is ever built. Splits
are stratified: each entry's count is divided among the splits by largest remainder, and an
entry's first samples (by index within it) go to the first split.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from itertools import accumulate

import numpy as np

SPLIT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
KNOWN_SPLITS = ("train", "validation", "test")


def ordered_splits(splits: dict[str, float]) -> dict[str, float]:
    """Splits in their layout order: train, validation, test, then others by name. Never the
    mapping's own order, which neither job.json (sorted keys) nor job_id keeps."""
    rank = {name: i for i, name in enumerate(KNOWN_SPLITS)}
    return {name: splits[name] for name in sorted(splits, key=lambda n: (rank.get(n, len(rank)), n))}


def weyl_stride(n: int) -> int:
    """The integer nearest n/phi (exact integer arithmetic) that is coprime with n."""
    a = max(1, (math.isqrt(5 * n * n) - n) // 2)
    while math.gcd(a, n) != 1:
        a += 1
    return a


def split_counts(count: int, fractions: tuple[Fraction, ...]) -> tuple[int, ...]:
    """`count` divided by the fractions (which sum to 1), by largest remainder, ties to the first."""
    return _split_counts(count, fractions)


@cache
def _split_counts(count: int, fractions: tuple[Fraction, ...]) -> tuple[int, ...]:
    quotas = [count * f for f in fractions]
    parts = [math.floor(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda j: (-(quotas[j] - parts[j]), j))
    for j in order[: count - sum(parts)]:
        parts[j] += 1
    return tuple(parts)


@dataclass(frozen=True)
class SplitLayout:
    """One split's samples: its sample_id range, entry offsets and Weyl stride."""

    name: str
    start: int
    offsets: tuple[int, ...]  # offsets[i]: first entry-major position of entry i; last = size
    stride: int  # 1 for by_class (the identity)

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def position(self, sample_id: int) -> int:
        """The entry-major position of a sample_id of this split."""
        return (sample_id - self.start) * self.stride % self.size

    def sample_id(self, position: int) -> int:
        """The inverse of `position`."""
        return self.start + position * pow(self.stride, -1, self.size) % self.size

    def counts_in(self, start: int, stop: int) -> np.ndarray:
        """Samples per entry among sample_ids [start, stop) of this split: O(entries log N)."""
        lo, hi = start - self.start, stop - self.start
        if self.stride == 1:
            return np.diff(np.clip(np.asarray(self.offsets, dtype=np.int64), lo, hi))
        below_hi, below_lo = _below(hi, self), _below(lo, self)
        return ((below_hi[1:] - below_hi[:-1]) - (below_lo[1:] - below_lo[:-1])).astype(np.int64)


def _below(m: int, split: SplitLayout) -> np.ndarray:
    """For each offset x: #{s < m : (s * a mod N) < x}, via floor sums (no sample is visited)."""
    n = split.size
    xs = np.asarray(split.offsets, dtype=np.int64)
    if m == 0:
        return np.zeros_like(xs)
    return m - floor_sums(m, n, split.stride, n - xs) + floor_sums(m, n, split.stride, xs[:1] * 0)[0]


def floor_sums(count: int, m: int, a: int, b: np.ndarray) -> np.ndarray:
    """sum_{i<count} floor((a*i + b) / m) for each b in [0, m]: the Euclid-like floor sum, vectorized.

    Every intermediate is below m * (count + 1): int64 while that fits, Python integers beyond.
    """
    dtype = np.int64 if m * (count + 1) < 2**62 else object
    b = np.asarray(b).astype(dtype)
    total = np.zeros(b.shape, dtype=dtype)
    idx = np.arange(b.size)  # the elements still being reduced, each with its own (n, m, a, b)
    n, mm, aa = (np.full(b.shape, v, dtype=dtype) for v in (count, m, a))
    while idx.size:
        total[idx] += (n - 1) * n // 2 * (aa // mm) + n * (b // mm)
        aa, b = aa % mm, b % mm
        y_max = aa * n + b
        go = y_max >= mm
        idx, n, b, mm, aa = idx[go], y_max[go] // mm[go], y_max[go] % mm[go], aa[go], mm[go]
    return total


@dataclass(frozen=True)
class SampleOrder:
    """The arithmetic layout of every sample: splits, then entries in the chosen order."""

    splits: tuple[SplitLayout, ...]

    @classmethod
    def build(cls, counts: list[int], splits: dict[str, float], interleaved: bool) -> SampleOrder:
        fractions = tuple(Fraction(str(f)) for f in splits.values())
        per_entry = [split_counts(c, fractions) for c in counts]
        layouts, start = [], 0
        for j, name in enumerate(splits):
            offsets = (0, *accumulate(parts[j] for parts in per_entry))
            stride = weyl_stride(offsets[-1]) if interleaved and offsets[-1] > 1 else 1
            layouts.append(SplitLayout(name, start, offsets, stride))
            start += offsets[-1]
        return cls(tuple(layouts))

    @property
    def total(self) -> int:
        return self.splits[-1].start + self.splits[-1].size

    def split_of(self, sample_id: int) -> SplitLayout:
        starts = [s.start for s in self.splits]
        return self.splits[bisect.bisect_right(starts, sample_id) - 1]

    def locate(self, sample_id: int) -> tuple[str, int, int]:
        """(split name, entry index, index of the sample within its entry)."""
        if not 0 <= sample_id < self.total:
            raise IndexError(f"sample_id {sample_id} is outside 0..{self.total - 1}")
        split = self.split_of(sample_id)
        position = split.position(sample_id)
        entry = bisect.bisect_right(split.offsets, position) - 1
        before = sum(s.offsets[entry + 1] - s.offsets[entry] for s in self.splits[: self.splits.index(split)])
        return split.name, entry, before + position - split.offsets[entry]

    def sample_id(self, entry: int, k: int) -> int:
        """The inverse of `locate`: the sample_id of the k-th sample of an entry."""
        for split in self.splits:
            size = split.offsets[entry + 1] - split.offsets[entry]
            if k < size:
                return split.sample_id(split.offsets[entry] + k)
            k -= size
        raise IndexError(f"entry {entry} has no sample {k}")
