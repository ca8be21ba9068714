"""Variations of init images for a batch: one reverse loop per start step (models/img2img.py).

Samples that start at different steps (their strengths differ) run as separate groups, each
with its own scheduler, so every image is the one it would be alone, and multistep solvers keep
the history diffusers' img2img pipelines give them. A job with one strength runs one group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from synthgen.models.img2img import InitImages, start_step
from synthgen.models.reverse_loop import reverse_loop

if TYPE_CHECKING:
    from synthgen.models.adapter import Adapter
    from synthgen.spec.job_spec import SamplerSpec
    from synthgen.spec.plan import Sample


def vary(adapter: Adapter, samples: Sequence[Sample], sampler: SamplerSpec, pixels: np.ndarray) -> np.ndarray:
    """Images of init images at each sample's strength: one reverse loop per start step."""
    starts = np.array([start_step(sampler.steps, float(s.strength)) for s in samples])
    images: np.ndarray | None = None
    for start in sorted(set(starts.tolist())):
        members = np.flatnonzero(starts == start)
        group = [samples[i] for i in members]
        init = None if start == 0 else InitImages(pixels[members], start)
        out = reverse_loop(adapter, group, sampler, init)
        if images is None:
            images = np.empty((len(samples), *out.shape[1:]), dtype=out.dtype)
        images[members] = out
    assert images is not None
    return images
