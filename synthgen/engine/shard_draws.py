"""A shard's samples through their draws: the worker's bookkeeping for the label filter.

Without a filter every first draw is accepted. With one, a rejected sample is drawn again with
the seed `sample_seed(job seed, sample_id, draw)`, draw = 1, 2, ..., until it is accepted.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace

import numpy as np

from synthgen.output import diversity
from synthgen.output.shard_schema import ShardRow
from synthgen.quality.features import pixel_space
from synthgen.quality.filter import FilterRejected, LabelFilter
from synthgen.spec.plan import Sample, sample_seed


class ShardDraws:
    """Which samples of a shard still need an image, and for each accepted one: its sample
    with the seed of the accepted draw (draw d: `sample_seed(job seed, sample_id, d)`), its
    encoded image, size, filter score, draw count and diversity features. Without a filter
    every first draw is accepted, and scores and draw counts stay None."""

    def __init__(self, samples: list[Sample], job_seed: int, label_filter: LabelFilter | None) -> None:
        n = len(samples)
        self.samples, self.job_seed, self.filter = samples, job_seed, label_filter
        self.chosen = list(samples)
        self.pending = list(range(n))
        self.taken = [False] * n
        self.scores: list[float | None] = [None] * n
        self.counts: list[int | None] = [None] * n
        self.best = [0.0] * n
        self.predicted = [""] * n
        self.sizes = [(0, 0)] * n
        self.features: list[np.ndarray | None] = [None] * n
        self.images: list[bytes] = []
        self.accepted = 0
        self._encoded: list[tuple[list[int], Future[list[bytes]]]] = []

    def todo(self, draw: int) -> list[tuple[int, Sample]]:
        """(position, sample with this draw's seed) for every sample still without an image, those
        with equal steps together (a model call runs one number of steps: sampler.steps choices)."""
        seeds = [sample_seed(self.job_seed, self.samples[p].sample_id, draw) for p in self.pending]
        todo = [(p, replace(self.samples[p], seed=seed)) for p, seed in zip(self.pending, seeds, strict=True)]
        return sorted(todo, key=lambda item: item[1].steps or 0)

    def record(self, batch: list[tuple[int, Sample]], pixels: np.ndarray, draw: int) -> np.ndarray:
        """Judge a generated batch; keep the accepted images' rows. Returns the accepted mask."""
        verdict = self.filter.judge(pixels, [s.label for _, s in batch]) if self.filter else None
        keep = verdict.accepted if verdict else np.ones(len(batch), dtype=bool)
        features = pixel_space(pixels.shape).features(pixels)
        for i, (p, sample) in enumerate(batch):
            if verdict is not None and verdict.scores[i] >= self.best[p]:
                self.best[p], self.predicted[p] = float(verdict.scores[i]), verdict.predicted[i]
            if not keep[i]:
                continue
            self.taken[p], self.chosen[p], self.features[p] = True, sample, features[i]
            self.sizes[p] = (pixels.shape[2], pixels.shape[1])
            if verdict is not None:
                self.scores[p], self.counts[p] = float(verdict.scores[i]), draw + 1
        self.accepted += int(keep.sum())
        return keep

    def encoding(self, batch: list[tuple[int, Sample]], keep: np.ndarray,
                 future: Future[list[bytes]]) -> None:
        self._encoded.append(([p for (p, _), k in zip(batch, keep, strict=True) if k], future))

    def end_draw(self) -> None:
        self.pending = [p for p in self.pending if not self.taken[p]]

    def collect(self) -> None:
        """Wait for the encoder; images in sample order."""
        images: list[bytes | None] = [None] * len(self.samples)
        for positions, future in self._encoded:
            for p, data in zip(positions, future.result(), strict=True):
                images[p] = data
        self.images = [b for b in images if b is not None]

    def rows(self) -> list[ShardRow]:
        """The shard's rows in sample order (after `collect`)."""
        columns = zip(self.chosen, self.images, self.sizes, self.scores, self.counts, strict=True)
        return [ShardRow(sample, image, width, height, score, count)
                for sample, image, (width, height), score, count in columns]

    def failure(self, shard: int, max_draws: int) -> FilterRejected:
        """The error that fails the shard when samples were rejected in every draw."""
        p = self.pending[0]
        sample, rule = self.samples[p], self.filter.rule() if self.filter else ""
        return FilterRejected(
            f"shard {shard}: sample {sample.sample_id} (class {sample.label_name!r}) was rejected by the "
            f"filter in all {max_draws} draws ({rule}; its best probability was {self.best[p]:.3f}, the "
            f"classifier saw {self.predicted[p]!r}); {len(self.pending)} sample(s) of this shard failed. "
            "Raise filter.max_draws, lower filter.min_prob, or check that the model draws this class")

    def pair_stats(self) -> dict[int, diversity.PairStats]:
        labels = [s.label for s in self.chosen]
        return diversity.per_class(np.stack([f for f in self.features if f is not None]), labels)
