"""A shard's samples through their draws: the worker's bookkeeping for the label filter.

Without a filter every first draw is accepted. With one, a rejected sample is drawn again with
the seed `sample_seed(job seed, sample_id, draw)`, draw = 1, 2, ..., until it is accepted.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np

from synthgen.output import diversity
from synthgen.output.shard_schema import ShardRow
from synthgen.quality.features import pixel_space
from synthgen.quality.filter import FilterRejected, LabelFilter
from synthgen.spec.plan import Sample, sample_seed


@dataclass
class Draws:
    """One sample of the shard through its draws: the sample with the seed of its accepted draw,
    and what the filter and the encoder made of it. `score`/`count` stay None without a filter."""

    sample: Sample
    taken: bool = False
    score: float | None = None
    count: int | None = None
    best: float = 0.0  # the filter's best probability over every draw, for the failure's message
    predicted: str = ""
    size: tuple[int, int] = (0, 0)
    features: np.ndarray | None = None
    image: bytes | None = None


class ShardDraws:
    """Which samples of a shard still need an image (`pending`, positions in the shard), and one
    `Draws` per sample. Draw d of a sample uses `sample_seed(job seed, sample_id, d)`. Without a
    filter every first draw is accepted."""

    def __init__(self, samples: list[Sample], job_seed: int, label_filter: LabelFilter | None) -> None:
        self.job_seed, self.filter = job_seed, label_filter
        self.draws = [Draws(sample) for sample in samples]
        self.pending = list(range(len(samples)))
        self.accepted = 0
        self._encoded: list[tuple[list[int], Future[list[bytes]]]] = []

    def todo(self, draw: int) -> list[tuple[int, Sample]]:
        """(position, sample with this draw's seed) for every sample still without an image, those
        with equal steps together (a model call runs one number of steps: sampler.steps choices)."""
        samples = [(p, self.draws[p].sample) for p in self.pending]
        todo = [(p, replace(s, seed=sample_seed(self.job_seed, s.sample_id, draw))) for p, s in samples]
        return sorted(todo, key=lambda item: item[1].steps or 0)

    def record(self, batch: list[tuple[int, Sample]], pixels: np.ndarray, draw: int) -> np.ndarray:
        """Judge a generated batch; keep the accepted images' rows. Returns the accepted mask."""
        verdict = self.filter.judge(pixels, [s.label for _, s in batch]) if self.filter else None
        keep = verdict.accepted if verdict else np.ones(len(batch), dtype=bool)
        features = pixel_space(pixels.shape).features(pixels)
        for i, (p, sample) in enumerate(batch):
            one = self.draws[p]
            if verdict is not None and verdict.scores[i] >= one.best:
                one.best, one.predicted = float(verdict.scores[i]), verdict.predicted[i]
            if not keep[i]:
                continue
            one.taken, one.sample, one.features = True, sample, features[i]
            one.size = (pixels.shape[2], pixels.shape[1])
            if verdict is not None:
                one.score, one.count = float(verdict.scores[i]), draw + 1
        self.accepted += int(keep.sum())
        return keep

    def encoding(self, batch: list[tuple[int, Sample]], keep: np.ndarray,
                 future: Future[list[bytes]]) -> None:
        self._encoded.append(([p for (p, _), k in zip(batch, keep, strict=True) if k], future))

    def end_draw(self) -> None:
        self.pending = [p for p in self.pending if not self.draws[p].taken]

    def collect(self) -> None:
        """Wait for the encoder."""
        for positions, future in self._encoded:
            for p, data in zip(positions, future.result(), strict=True):
                self.draws[p].image = data

    def rows(self) -> list[ShardRow]:
        """The shard's rows in sample order (after `collect`)."""
        return [ShardRow(d.sample, d.image, d.size[0], d.size[1], d.score, d.count)
                for d in self.draws if d.image is not None]

    def failure(self, shard: int, max_draws: int) -> FilterRejected:
        """The error that fails the shard when samples were rejected in every draw."""
        first = self.draws[self.pending[0]]
        sample, rule = first.sample, self.filter.rule() if self.filter else ""
        return FilterRejected(
            f"shard {shard}: sample {sample.sample_id} (class {sample.label_name!r}) was rejected by the "
            f"filter in all {max_draws} draws ({rule}; its best probability was {first.best:.3f}, the "
            f"classifier saw {first.predicted!r}); {len(self.pending)} sample(s) of this shard failed. "
            "Raise filter.max_draws, lower filter.min_prob, or check that the model draws this class")

    def pair_stats(self) -> dict[int, diversity.PairStats]:
        taken = [(d.features, d.sample.label) for d in self.draws if d.features is not None]
        return diversity.per_class(np.stack([f for f, _ in taken]), [label for _, label in taken])
