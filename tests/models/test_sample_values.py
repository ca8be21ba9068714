"""Per-sample sampler values in the loop: guidance per row in one CFG combine, steps per call."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from synthgen.engine.driver import prepare
from synthgen.models.registry import load_adapter
from synthgen.spec.load import validate_spec
from tests.conftest import tiny_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def loaded(class_model: Path, tmp_path_factory: pytest.TempPathFactory):
    spec = validate_spec(tiny_spec(class_model, tmp_path_factory.mktemp("o") / "out"))
    prepared = prepare(spec)
    return prepared.plan, load_adapter(prepared.info, spec.model), spec.sampler


def test_guidance_is_applied_per_row_in_one_batch(loaded) -> None:
    plan, adapter, sampler = loaded
    a, b = plan.sample(0), plan.sample(8)
    low, high = dataclasses.replace(a, guidance_scale=1.5), dataclasses.replace(b, guidance_scale=4.0)
    mixed = adapter.generate([low, high], sampler)
    same = adapter.generate([low, dataclasses.replace(high, guidance_scale=1.5)], sampler)
    assert np.array_equal(mixed[0], same[0])  # a row's combine does not see its neighbour's scale
    assert not np.array_equal(mixed[1], same[1])
    alone = adapter.generate([high], sampler)[0]
    assert np.abs(alone.astype(int) - mixed[1].astype(int)).max() <= 1  # the batch-size bound


def test_a_batch_with_several_steps_values_runs_each_with_its_own(loaded) -> None:
    plan, adapter, sampler = loaded
    two, five = dataclasses.replace(plan.sample(0), steps=2), dataclasses.replace(plan.sample(1), steps=5)
    mixed = adapter.generate([two, five], sampler)
    for sample, image in zip((two, five), mixed, strict=True):
        fixed = sampler.model_copy(update={"steps": sample.steps})
        alone = adapter.generate([dataclasses.replace(sample, steps=None)], fixed)[0]
        assert np.array_equal(alone, image)
