"""The generic adapter: whole diffusers pipelines (SDXL-style, SD3-style flow) with per-sample seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthgen.engine.driver import prepare
from synthgen.errors import UserError
from synthgen.models.registry import load_adapter
from synthgen.spec.load import validate_spec
from tests.conftest import synthgen, write_spec
from tests.helpers import tiny_models
from tests.helpers.dataset_outputs import committed_rows

ITEMS = [{"prompt": "a red car", "label": "car"},
         {"prompt": "a blue ship", "negative_prompt": "blurry", "label": "ship", "count": 3}]

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def sdxl_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.sdxl_pipeline(tmp_path_factory.mktemp("models") / "tiny-sdxl")


@pytest.fixture(scope="module")
def sd3_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.sd3_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd3")


def job(model: Path, out: Path, scheduler: str = "euler", **sampler: Any) -> dict[str, Any]:
    return {
        "name": "tiny-pipeline", "seed": 0, "model": {"source": str(model)},
        "sampler": {"scheduler": scheduler, "steps": 2, "guidance_scale": 3.0, **sampler},
        "prompts": {"items": ITEMS, "count": 2},
        "output": {"uri": str(out), "shard_size": 3, "order": "by_class"},
        "compute": {"batch_size": 4, "workers": 1},
    }


@pytest.mark.slow
def test_sdxl_style_prompt_job_end_to_end(tmp_path: Path, sdxl_model: Path, ray_address: str) -> None:
    out = tmp_path / "out"
    result = synthgen("run", str(write_spec(tmp_path / "job.yaml", job(sdxl_model, out))),
                      address=ray_address)
    assert result.returncode == 0, result.stderr
    rows = committed_rows(out)
    assert [r["sample_id"] for r in rows] == list(range(5))
    assert [r["prompt"] for r in rows] == ["a red car"] * 2 + ["a blue ship"] * 3
    assert [r["negative_prompt"] for r in rows] == [None] * 2 + ["blurry"] * 3
    assert [r["label"] for r in rows] == [0, 0, 1, 1, 1]
    assert {(r["width"], r["height"]) for r in rows} == {(16, 16)}
    record = json.loads((out / "job.json").read_text())["model"]
    assert record["family"] == "pipeline"
    assert {r["model_revision"] for r in rows} == {record["revision"]}


def test_pipeline_images_depend_on_their_own_seed_only(tmp_path: Path, sdxl_model: Path) -> None:
    spec = validate_spec(job(sdxl_model, tmp_path / "out", scheduler="euler-a"))
    prepared = prepare(spec)
    adapter = load_adapter(prepared.info, spec.model)
    samples = prepared.plan.samples(prepared.plan.shard(0)) + prepared.plan.samples(prepared.plan.shard(1))
    together = adapter.generate(samples, spec.sampler)
    alone = np.concatenate([adapter.generate([s], spec.sampler) for s in samples])
    assert np.array_equal(together, alone), "a batch mixing negative prompts gives the same images"
    assert len({image.tobytes() for image in together}) == len(samples)


def test_flow_model_runs_flow_euler_and_refuses_others(tmp_path: Path, sd3_model: Path) -> None:
    spec = validate_spec(job(sd3_model, tmp_path / "out", scheduler="flow-euler", height=16, width=32))
    prepared = prepare(spec)
    assert prepared.info.family == "pipeline" and prepared.info.size_multiple == 4
    images = load_adapter(prepared.info, spec.model).generate(
        prepared.plan.samples(prepared.plan.shard(0)), spec.sampler)
    assert images.shape == (3, 16, 32, 3)
    with pytest.raises(UserError, match="flow-matching model; use flow-euler") as caught:
        prepare(validate_spec(job(sd3_model, tmp_path / "out", scheduler="dpm++")))
    assert caught.value.field == "sampler.scheduler"


def test_flow_euler_is_refused_on_a_noise_model(tmp_path: Path, sdxl_model: Path) -> None:
    with pytest.raises(UserError, match="is for flow-matching models") as caught:
        prepare(validate_spec(job(sdxl_model, tmp_path / "out", scheduler="flow-euler")))
    assert caught.value.field == "sampler.scheduler"


def test_adapter_override_runs_stable_diffusion_as_a_whole_pipeline(tmp_path: Path) -> None:
    model = tiny_models.sd_pipeline(tmp_path / "tiny-sd")
    spec = job(model, tmp_path / "out", scheduler="ddim")
    own = prepare(validate_spec(spec))
    spec["model"]["adapter"] = "pipeline"
    whole = prepare(validate_spec(spec))
    assert (own.info.family, whole.info.family) == ("sd", "pipeline")
    images = load_adapter(whole.info, whole.plan.spec.model).generate(
        whole.plan.samples(whole.plan.shard(0)), whole.plan.spec.sampler)
    assert images.shape == (3, 16, 16, 3)
