"""Per-sample ranges of a number: `{uniform: [lo, hi]}`, drawn from the sample's seed alone.

A range is drawn by a pure function of (sample seed, field name), so a value never depends on
batch, worker, retry or resume, and two fields of one sample draw independently.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, model_validator


class Uniform(BaseModel):
    """`{uniform: [lo, hi]}`: a value drawn uniformly in [lo, hi] for every sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uniform: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        lo, hi = self.uniform
        if lo > hi:
            raise ValueError(f"uniform: [{lo:g}, {hi:g}] has lo > hi; write [low, high]")
        return self


def unit_draw(seed: int, name: str) -> float:
    """A number in [0, 1) that depends on (seed, name) alone: 53 bits of a blake2b digest."""
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def draw(value: float | Uniform, seed: int, name: str) -> float:
    """A fixed number as is, or a range's draw for the sample with this seed."""
    if isinstance(value, Uniform):
        lo, hi = value.uniform
        return lo + (hi - lo) * unit_draw(seed, name)
    return float(value)
