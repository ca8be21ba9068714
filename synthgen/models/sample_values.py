"""Each sample's own sampler values, and model calls grouped by the values a call needs once.

The plan records every sample's guidance scale, steps and, with init images, strength
(spec/sample_draws.py); a sample built elsewhere (a benchmark, the train preview) has none and
takes the sampler's fixed values.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synthgen.spec.job_spec import SamplerSpec
    from synthgen.spec.plan import Sample


def guidance_of(sample: Sample, sampler: SamplerSpec) -> float:
    value = sample.guidance_scale if sample.guidance_scale is not None else sampler.guidance_scale
    if not isinstance(value, int | float):
        raise ValueError(f"sample {sample.sample_id} has no guidance scale drawn from {value!r}")
    return float(value)


def steps_of(sample: Sample, sampler: SamplerSpec) -> int:
    value = sample.steps if sample.steps is not None else sampler.steps
    if not isinstance(value, int):
        raise ValueError(f"sample {sample.sample_id} has no steps drawn from {value!r}")
    return value


def start_step(steps: int, strength: float) -> int:
    """diffusers' get_timesteps: of `steps` steps an init image at this strength runs the last
    int(steps * strength); the index of its first (0: plain generation)."""
    return max(steps - min(int(steps * strength), steps), 0)


def start_of(sample: Sample, sampler: SamplerSpec) -> int:
    """The step a sample starts at: 0 without an init image."""
    return 0 if sample.strength is None else start_step(steps_of(sample, sampler), sample.strength)


def grouped(samples: Sequence[Sample], key: Callable[[Sample], Hashable],
            call: Callable[[list[int]], np.ndarray]) -> np.ndarray:
    """`call` once per group of samples sharing `key` (in order of first appearance), with the
    group's positions in `samples` (so aligned inputs such as init images follow); the images
    back in the samples' order. One group: one call on the batch as it is."""
    groups: dict[Hashable, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(key(sample), []).append(i)
    if len(groups) == 1:
        return call(list(range(len(samples))))
    images: dict[int, np.ndarray] = {}
    for members in groups.values():
        images.update(zip(members, call(members), strict=True))
    return np.stack([images[i] for i in range(len(samples))])
