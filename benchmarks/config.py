"""What every contender generates: one job, described once and handed to each process as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchConfig:
    """The acceptance job by default: 3 classes x 2,000 images, 16x16, ddim 20 steps, batch 64."""

    model: str  # a DDPMPipeline folder (see benchmarks/model.py)
    classes: int = 3
    per_class: int = 2000
    steps: int = 20
    batch_size: int = 64
    shard_size: int = 1000
    threads: int = os.cpu_count() or 1
    seed: int = 0

    @property
    def total(self) -> int:
        return self.classes * self.per_class

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> BenchConfig:
        return cls(**json.loads(Path(path).read_text()))

    def batches(self) -> list[range]:
        """sample_id ranges in synthgen's order: shard by shard, then batch by batch within a shard."""
        out = []
        for shard_start in range(0, self.total, self.shard_size):
            shard_stop = min(shard_start + self.shard_size, self.total)
            out += [range(s, min(s + self.batch_size, shard_stop))
                    for s in range(shard_start, shard_stop, self.batch_size)]
        return out

    def label(self, sample_id: int) -> int:
        """Classes are planned in order, `per_class` samples each."""
        return sample_id // self.per_class
