"""End-to-end tests of `synthgen.train` with tiny models (a few steps each, seconds in all)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from diffusers import UNet2DModel
from PIL import Image
from safetensors.torch import load_file

from synthgen.inputs.labeled_sources import DIGITS_TRAIN_END
from synthgen.train.config import TrainConfig
from synthgen.train.data import load_source
from synthgen.train.trainer import batch_indices, train

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "synthgen" / "models" / "builtin" / "digits"


def tiny_config(tmp_path: Path, **overrides: object) -> TrainConfig:
    """A model small enough that a few steps, the save and the grid take about a second."""
    base: dict[str, object] = {
        "output": tmp_path / "model",
        "steps": 4,
        "batch_size": 8,
        "warmup_steps": 2,
        "block_out_channels": (8, 16),
        "log_every": 2,
        "checkpoint_every": 2,
        "sample_steps": 2,
        "threads": 2,
    }
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


def ema_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "unet" / "diffusion_pytorch_model.safetensors")


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted 4-step run, shared by the layout and the resume tests."""
    return train(tiny_config(tmp_path_factory.mktemp("straight")))


def test_sample_grid_is_the_products_own_loop(digits_model: Path) -> None:
    """The grid is what a job with the training seed draws: the same loading path, the same
    reverse loop, one generator per sample seeded with sample_seed(seed, i)."""
    from synthgen.models.registry import inspect_model, load_adapter
    from synthgen.spec.job_spec import ModelSpec, SamplerSpec
    from synthgen.spec.plan import Sample, sample_seed

    config = tiny_config(digits_model.parent)
    spec = ModelSpec(source=str(digits_model), device="cpu")
    adapter = load_adapter(inspect_model(spec), spec)
    samples = [Sample(sample_id=i, seed=sample_seed(config.seed, i), label=i // 10, label_name=str(i // 10),
                      prompt=None, template=None, negative_prompt=None, model_label=i // 10)
               for i in range(10, 20)]  # the grid's second row: class 1
    sampler = SamplerSpec(scheduler=config.sample_scheduler, steps=config.sample_steps,
                          guidance_scale=config.guidance_scale)
    grid = np.asarray(Image.open(digits_model / "samples.png"))[::4, ::4].astype(int)  # 8x8 shown 4x
    row = np.concatenate(list(adapter.generate(samples, sampler)[..., 0]), axis=1)
    assert np.abs(grid[8:16] - row).max() <= 1  # another batch size: floating-point noise only
    others = [replace(s, seed=config.seed + s.sample_id) for s in samples]  # seeds as train once had
    elsewhere = np.concatenate(list(adapter.generate(others, sampler)[..., 0]), axis=1)
    assert np.abs(grid[8:16] - elsewhere).max() > 8


def test_digits_end_to_end(digits_model: Path) -> None:
    out = digits_model

    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "DDPMPipeline"
    assert index["unet"] == ["diffusers", "UNet2DModel"]
    assert index["scheduler"][1] == "DDPMScheduler"
    unet = UNet2DModel.from_pretrained(out / "unet")
    assert (unet.config.in_channels, unet.config.sample_size) == (1, 8)
    assert unet.config.num_class_embeds == 11
    meta = json.loads((out / "synthgen.json").read_text())
    assert meta["id2label"] == {str(i): str(i) for i in range(10)}
    assert meta["null_class"] == 10 and meta["value_range"] == [-1, 1]
    assert "index < 1200" in meta["training"]["data"]
    assert meta["training"]["command"].startswith("synthgen train --source builtin:digits")
    assert Image.open(out / "samples.png").size == (10 * 32, 10 * 32)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-00000002.pt",
        "step-00000004.pt",
    ]


def test_resume_continues_where_it_stopped(
    digits_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tiny_config(tmp_path / "resumed", steps=2)
    train(first)
    resumed = train(tiny_config(tmp_path / "resumed", resume_from=first.output / "checkpoints"))

    err = capsys.readouterr().err
    before, after = err.split("resumed from step 2")  # the fixture's own log may come first
    assert "step 2/2  loss" in before and "step 4/4  loss" in after
    last = torch.load(resumed / "checkpoints" / "step-00000004.pt", weights_only=True)
    assert last["step"] == 4
    # Per-step seeding makes the resumed run draw what the uninterrupted one drew.
    a, b = ema_weights(digits_model), ema_weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_image_folder_source(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i}.png")

    config = tiny_config(tmp_path, source=str(tmp_path / "images"), image_size=8, steps=2)
    out = train(config)

    unet = UNet2DModel.from_pretrained(out / "unet")
    assert (unet.config.in_channels, unet.config.num_class_embeds) == (3, 3)
    meta = json.loads((out / "synthgen.json").read_text())
    assert meta["id2label"] == {"0": "cat", "1": "dog"} and meta["null_class"] == 2
    assert Image.open(out / "samples.png").size == (10 * 32, 2 * 32)


def test_parquet_source_reads_class_names_and_skips_duplicates(tmp_path: Path) -> None:
    def png(value: int) -> bytes:
        buffer = io.BytesIO()
        Image.new("L", (8, 8), value).save(buffer, format="PNG")
        return buffer.getvalue()

    features = {"label": {"_type": "ClassLabel", "names": ["zero", "one"]}}
    table = pa.table(
        {
            "image": [{"bytes": png(v), "path": None} for v in (0, 255, 255)],
            "label": pa.array([0, 1, 1], pa.int64()),
            "sample_id": [0, 1, 1],  # a losing retry's leftover file repeats sample 1
        }
    ).replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "shard-00000-a.parquet")

    data = load_source(str(tmp_path), image_size=None, channels=None)

    assert data.class_names == ["zero", "one"]
    assert data.labels.tolist() == [0, 1]
    assert data.images.shape == (2, 1, 8, 8)
    assert data.images.min() == -1 and data.images.max() == 1


def test_builtin_digits_never_include_the_held_out_set() -> None:
    data = load_source("builtin:digits", image_size=None, channels=None, limit=5000)
    assert len(data) == DIGITS_TRAIN_END == 1200
    assert data.images.shape[1:] == (1, 8, 8)
    assert data.images.min() >= -1 and data.images.max() <= 1


def test_batch_indices_cover_each_epoch_once() -> None:
    stream = torch.cat([batch_indices(10, 4, step, seed=0) for step in range(5)])
    assert sorted(stream[:10].tolist()) == list(range(10))
    assert sorted(stream[10:20].tolist()) == list(range(10))
    assert torch.equal(batch_indices(10, 4, 3, seed=0), batch_indices(10, 4, 3, seed=0))


@pytest.mark.skipif(not (BUILTIN_DIR / "synthgen.json").exists(), reason="model not shipped")
def test_shipped_digits_model_is_small_and_samples() -> None:
    from synthgen.models.registry import inspect_model, load_adapter
    from synthgen.spec.job_spec import ModelSpec, SamplerSpec
    from synthgen.spec.plan import Sample, sample_seed

    weights = BUILTIN_DIR / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 8 * 2**20
    assert all(t.dtype == torch.float32 for t in load_file(weights).values())
    meta = json.loads((BUILTIN_DIR / "synthgen.json").read_text())
    spec = ModelSpec(source="builtin:digits", device="cpu")
    adapter = load_adapter(inspect_model(spec), spec)
    samples = [Sample(sample_id=i, seed=sample_seed(0, i), label=c, label_name=str(c), prompt=None,
                      template=None, negative_prompt=None, model_label=c) for i, c in enumerate([0, 1, 7])]
    pixels = adapter.generate(samples, SamplerSpec(**meta["sampler"]))
    assert pixels.shape == (3, 8, 8, 1) and pixels.dtype == np.uint8
    assert pixels.max() > 128  # ink, not a blank image
