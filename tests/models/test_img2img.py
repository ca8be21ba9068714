"""img2img in synthgen's own reverse loop, held equal to diffusers' StableDiffusionImg2ImgPipeline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from PIL import Image

from synthgen.inputs.labeled_keys import init_pixels
from synthgen.models.registry import inspect_model, load_adapter
from synthgen.models.sample_values import start_step
from synthgen.models.schedulers import build_scheduler
from synthgen.spec.job_spec import ModelSpec, SamplerSpec
from synthgen.spec.plan import Sample
from tests.helpers import tiny_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPTS = ("a photo of a cat", "a red car", "a blue ship")


@pytest.fixture(scope="module")
def sd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


def images(n: int, size: int, mode: str = "RGB", seed: int = 0) -> list[Image.Image]:
    """Smooth random images (blurred noise), so a VAE and a UNet see some structure."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    small = rng.integers(0, 256, (n, size // 2, size // 2, channels), dtype=np.uint8)
    return [Image.fromarray(a.squeeze(-1) if channels == 1 else a, mode).resize((size, size), Image.BICUBIC)
            for a in small]


def samples(strengths: list[float], prompts: tuple[str, ...] = PROMPTS) -> list[Sample]:
    return [Sample(sample_id=i, seed=1000 + i, label=0, label_name="a", prompt=prompts[i % len(prompts)],
                   template=None, negative_prompt=None, model_label=None, init_id=f"{i}.png",
                   init_label="a", strength=s) for i, s in enumerate(strengths)]


@pytest.mark.parametrize("scheduler", ["ddim", "euler", "dpm++"])
def test_ours_equals_stable_diffusion_img2img(sd_model: Path, scheduler: str) -> None:
    spec = ModelSpec(source=str(sd_model))
    info = inspect_model(spec)
    adapter = load_adapter(info, spec)
    sampler = SamplerSpec(scheduler=scheduler, steps=10, guidance_scale=3.0)
    init = images(3, 16)
    batch = samples([0.6] * 3)
    ours = adapter.generate(batch, sampler, init_pixels(init, (16, 16), 3, "stretch"))

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(sd_model, safety_checker=None,
                                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = build_scheduler(scheduler, info.scheduler_config)
    generators = [torch.Generator("cpu").manual_seed(s.seed) for s in batch]
    theirs = pipe(prompt=list(PROMPTS), image=init, strength=0.6, num_inference_steps=10,
                  guidance_scale=3.0, generator=generators, output_type="np").images
    theirs = (theirs * 255).round()
    assert np.abs(ours.astype(np.float64) - theirs).max() <= 1.0
    assert np.abs(ours.astype(np.float64) - np.asarray(init, dtype=np.float64)).mean() > 1.0


def test_a_batch_may_mix_strengths_and_init_images(sd_model: Path) -> None:
    spec = ModelSpec(source=str(sd_model))
    adapter = load_adapter(inspect_model(spec), spec)
    sampler = SamplerSpec(scheduler="dpm++", steps=8, guidance_scale=2.0)
    pixels = init_pixels(images(4, 16, seed=1), (16, 16), 3, "stretch")
    batch = samples([0.3, 0.9, 0.3, 0.55])
    together = adapter.generate(batch, sampler, pixels)
    alone = np.concatenate([adapter.generate([s], sampler, pixels[i : i + 1]) for i, s in enumerate(batch)])
    assert np.abs(together.astype(int) - alone.astype(int)).max() <= 1


def test_strength_extremes_in_pixel_space(tmp_path: Path) -> None:
    model = tiny_models.class_unet(tmp_path / "unet")
    spec = ModelSpec(source=str(model))
    adapter = load_adapter(inspect_model(spec), spec)
    sampler = SamplerSpec(scheduler="ddim", steps=20, guidance_scale=2.0)
    source = images(2, 8, "L", seed=2)
    pixels = init_pixels(source, (8, 8), 1, "stretch")
    kept = adapter.generate(samples([0.0, 0.0]), sampler, pixels)
    assert np.array_equal(kept[..., 0], np.stack([np.asarray(im) for im in source])), "strength 0: the source"
    plain = adapter.generate([dataclasses.replace(s, init_id=None, strength=None) for s in samples([1, 1])],
                             sampler)
    assert np.array_equal(adapter.generate(samples([1.0, 1.0]), sampler, pixels), plain), "1: plain"
    near = adapter.generate(samples([0.05, 0.05]), sampler, pixels).astype(float)
    far = adapter.generate(samples([0.99, 0.99]), sampler, pixels).astype(float)
    truth = np.stack([np.asarray(im) for im in source])[..., None].astype(float)
    assert np.abs(near - truth).mean() < 0.25 * np.abs(far - truth).mean()


def test_start_step_is_diffusers_get_timesteps() -> None:
    assert [start_step(10, s) for s in (0.0, 0.05, 0.1, 0.35, 0.5, 0.99, 1.0)] == [10, 10, 9, 7, 5, 1, 0]


def test_dit_encodes_through_its_vae_with_shift_and_scale(tmp_path: Path) -> None:
    model = tiny_models.dit_pipeline(tmp_path / "dit")
    spec = ModelSpec(source=str(model))
    adapter = load_adapter(inspect_model(spec), spec)
    pixels = init_pixels(images(2, 16, seed=3), (16, 16), 3, "stretch")
    sampler = SamplerSpec(scheduler="ddim", steps=6, guidance_scale=1.5)
    batch = [dataclasses.replace(s, label_name=None, model_label=1) for s in samples([0.0, 0.5])]
    out = adapter.generate(batch, sampler, pixels)
    generators = [torch.Generator("cpu").manual_seed(batch[0].seed)]
    latents = adapter.decoder.encode(torch.from_numpy(pixels[:1]), generators)
    assert np.array_equal(out[:1], adapter.decode(latents)), "strength 0: the encoded source, decoded"
    assert out.shape == (2, 16, 16, 3) and not np.array_equal(out[0], out[1])
