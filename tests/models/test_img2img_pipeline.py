"""img2img for the pipeline family: AutoPipelineForImage2Image over the same components."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline

from synthgen.inputs.labeled_keys import init_pixels
from synthgen.models.registry import inspect_model, load_adapter
from synthgen.models.schedulers import build_scheduler
from synthgen.spec.job_spec import ModelSpec, SamplerSpec
from tests.helpers import tiny_models
from tests.models.test_img2img import images, samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sdxl_img2img_per_sample_generators_and_extremes(tmp_path: Path) -> None:
    model = tiny_models.sdxl_pipeline(tmp_path / "sdxl")
    spec = ModelSpec(source=str(model))
    info = inspect_model(spec)
    assert info.family == "pipeline" and info.img2img
    adapter = load_adapter(info, spec)
    sampler = SamplerSpec(scheduler="euler", steps=6, guidance_scale=3.0)
    source = images(4, 16, seed=4)
    pixels = init_pixels(source, (16, 16), 3, "stretch")
    batch = samples([0.5, 1.0, 0.0, 0.5])
    out = adapter.generate(batch, sampler, pixels)

    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = build_scheduler("euler", info.scheduler_config)
    halves = [batch[0], batch[3]]
    theirs = pipe(prompt=[s.prompt for s in halves], image=[source[0], source[3]], strength=0.5,
                  num_inference_steps=6, guidance_scale=3.0, output_type="np",
                  generator=[torch.Generator("cpu").manual_seed(s.seed) for s in halves]).images
    assert np.abs(out[[0, 3]].astype(float) - (theirs * 255).round()).max() <= 1.0
    plain = adapter.generate([dataclasses.replace(batch[1], init_id=None, strength=None)], sampler)
    assert np.array_equal(out[1], plain[0]), "strength 1: plain generation"
    assert np.array_equal(out[2], np.asarray(source[2])), "strength 0: the source"
    alone = adapter.generate(batch[3:], sampler, pixels[3:])
    assert np.abs(out[3].astype(int) - alone[0].astype(int)).max() <= 1, "batch mates change nothing"
