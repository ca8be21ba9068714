"""Every scheduler name, built from the model's own config, with per-sample randomness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthgen.engine.driver import prepare
from synthgen.errors import UserError
from synthgen.models.registry import load_adapter
from synthgen.models.schedulers import build_scheduler
from synthgen.spec import scheduler_names
from synthgen.spec.load import validate_spec
from synthgen.spec.scheduler_names import FLOW_SCHEDULERS, SCHEDULERS, scheduler_problem
from tests.conftest import tiny_spec

NOISE_SCHEDULERS = [name for name in SCHEDULERS if name not in FLOW_SCHEDULERS]

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def unet(class_model: Path, tmp_path_factory: pytest.TempPathFactory):
    prepared = prepare(validate_spec(tiny_spec(class_model, tmp_path_factory.mktemp("out"))))
    return prepared, load_adapter(prepared.info, prepared.plan.spec.model)


@pytest.mark.parametrize("name", NOISE_SCHEDULERS)
def test_scheduler_is_deterministic_per_sample(unet, name: str) -> None:
    prepared, adapter = unet
    sampler = prepared.plan.spec.sampler.model_copy(update={"scheduler": name, "steps": 3, "eta": 0.5})
    samples = prepared.plan.samples(prepared.plan.shard(0))
    batch = adapter.generate(samples, sampler)
    again = adapter.generate(samples, sampler)
    split = np.concatenate([adapter.generate(samples[:2], sampler), adapter.generate(samples[2:], sampler)])
    assert np.array_equal(batch, again)
    # Another batch may move a pixel by float noise only (kernels block differently by batch size).
    assert np.abs(batch.astype(int) - split).max() <= 1
    assert len({image.tobytes() for image in batch}) == len(samples)


def test_stochastic_schedulers_use_each_samples_generator(unet) -> None:
    """DDIM with eta > 0 and the SDE solver add noise; it must follow the sample's seed."""
    prepared, adapter = unet
    samples = prepared.plan.samples(prepared.plan.shard(0))
    for name in ("ddim", "dpm++-sde", "euler-a"):
        sampler = prepared.plan.spec.sampler.model_copy(update={"scheduler": name, "steps": 3, "eta": 1.0})
        first = adapter.generate(samples[:1], sampler)
        with_others = adapter.generate([samples[3], samples[0]], sampler)[1:]
        assert np.abs(first.astype(int) - with_others).max() <= 1, name


def test_eta_changes_ddim(unet) -> None:
    prepared, adapter = unet
    samples = prepared.plan.samples(prepared.plan.shard(0))[:2]
    sampler = prepared.plan.spec.sampler.model_copy(update={"scheduler": "ddim", "steps": 3})
    deterministic = adapter.generate(samples, sampler)
    noisy = adapter.generate(samples, sampler.model_copy(update={"eta": 1.0}))
    assert not np.array_equal(deterministic, noisy)


def test_unknown_scheduler_lists_the_valid_names(tmp_path: Path, class_model: Path) -> None:
    with pytest.raises(UserError) as caught:
        validate_spec(tiny_spec(class_model, tmp_path, sampler__scheduler="dpm2"))
    assert caught.value.field == "sampler.scheduler"
    assert all(name in caught.value.fix for name in SCHEDULERS)


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(scheduler_names.REQUIRES, "dpm++-sde", "synthgen_no_such_package")
    problem = scheduler_problem("dpm++-sde", None)
    assert problem is not None and "pip install synthgen_no_such_package" in problem


def test_every_name_builds_from_a_model_config() -> None:
    noise = {"_class_name": "DDPMScheduler", "num_train_timesteps": 100, "beta_schedule": "linear"}
    flow = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}
    for name in SCHEDULERS:
        config = flow if name in FLOW_SCHEDULERS else noise
        assert scheduler_problem(name, config) is None
        scheduler = build_scheduler(name, config)
        assert type(scheduler).__name__ == SCHEDULERS[name][0]
        carried = ("shift", 3.0) if name in FLOW_SCHEDULERS else ("num_train_timesteps", 100)
        assert scheduler.config[carried[0]] == carried[1], "the model's schedule carries over"
