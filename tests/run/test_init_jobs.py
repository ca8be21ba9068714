"""img2img jobs end to end, as a new user runs them: `synthgen run` on a real local Ray."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from synthgen.quality.judges import digits_judge
from tests.conftest import synthgen, tiny_spec, write_spec
from tests.helpers.dataset_outputs import Built, committed_rows
from tests.helpers.faults import fault_plan
from tests.helpers.init_sources import digits_folder


def pixels(row: dict[str, Any]) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))


@pytest.mark.slow
def test_variations_of_an_image_folder_of_digits(tmp_path: Path, ray_address: str) -> None:
    real = digits_folder(tmp_path / "real")
    spec = {"name": "digit-variations", "model": {"source": "builtin:digits"},
            "sampler": {"scheduler": "dpm++", "steps": 10, "guidance_scale": 1.5},
            "init": {"source": str(real), "strength": 0.5, "per_image": 2},
            "output": {"uri": str(tmp_path / "out"), "shard_size": 8}, "compute": {"workers": 1}}
    result = synthgen("run", str(write_spec(tmp_path / "job.yaml", spec)), address=ray_address)
    assert result.returncode == 0, result.stderr
    rows = committed_rows(tmp_path / "out")
    assert len(rows) == 30 and [r["sample_id"] for r in rows] == list(range(30))
    assert Counter(r["init_id"] for r in rows) == {f"{c}/{n:03d}.png": 2 for c in "012" for n in range(5)}
    assert all(r["label_name"] == r["init_label"] == r["init_id"][0] == str(r["label"]) for r in rows)
    assert {r["strength"] for r in rows} == {0.5}
    judge = digits_judge()
    predicted = judge.svc.predict(judge.space.features(np.stack([pixels(r) for r in rows])))
    assert (predicted == np.array([r["label"] for r in rows])).mean() >= 0.9
    card = (tmp_path / "out" / "README.md").read_text()
    assert "15 labeled images of" in card and "init_id" in card
    again = synthgen("sample", str(tmp_path / "out"), "13", "--output", str(tmp_path / "13.png"))
    assert again.returncode == 0 and "match: the regenerated image's" in again.stdout, again.stderr


def hf_parquet_source(out: Path) -> Path:
    """A Hugging Face-style image dataset (`image` + ClassLabel `label`), saved by `datasets`."""
    import datasets

    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)) for _ in range(6)]
    label = datasets.ClassLabel(names=["cat", "dog"])
    features = datasets.Features({"image": datasets.Image(), "label": label})
    table = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1, 1, 0]}, features=features)
    out.mkdir(parents=True)
    table.to_parquet(str(out / "train.parquet"))
    return out


@pytest.fixture(scope="module")
def sd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers import tiny_models

    return tiny_models.sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


def sd_job(model: Path, source: Path, out: Path) -> dict[str, Any]:
    return {"name": "sd-variations", "seed": 3, "model": {"source": str(model)},
            "sampler": {"scheduler": "dpm++", "steps": 6, "guidance_scale": 3.0},
            "classes": {"templates": ["a photo of a {name}"]},
            "init": {"source": str(source), "strength": {"uniform": [0.3, 0.7]}, "per_image": 2,
                     "resize": "center-crop"},
            "output": {"uri": str(out), "shard_size": 3}, "compute": {"batch_size": 4, "workers": 1}}


def unet_job(model: Path, source: Path, out: Path) -> dict[str, Any]:
    spec = tiny_spec(model, out, init={"source": str(source), "strength": 0.6, "per_image": 1},
                     output__shard_size=4)
    del spec["classes"]
    return spec


def killed_then_resumed(tmp_path: Path, spec: dict[str, Any], ray_address: str) -> list[dict[str, Any]]:
    """An uninterrupted run, and a run whose actor is killed mid-shard and whose shard 2 fails
    every attempt, then `synthgen resume`: the same bytes for every sample_id."""
    def at(name: str) -> Path:
        output = {**spec["output"], "uri": str(tmp_path / name)}
        return write_spec(tmp_path / f"{name}.yaml", {**spec, "output": output})

    assert synthgen("run", str(at("one")), address=ray_address).returncode == 0
    path = at("two")
    with fault_plan("crash:0:0,raise:2:*"):
        interrupted = synthgen("run", str(path), address=ray_address)
    assert interrupted.returncode == 1 and "shard 2" in interrupted.stderr
    resumed = synthgen("resume", str(tmp_path / "two"), address=ray_address)
    assert resumed.returncode == 0, resumed.stderr
    one, two = committed_rows(tmp_path / "one"), committed_rows(tmp_path / "two")
    assert [r["image"]["bytes"] for r in one] == [r["image"]["bytes"] for r in two]
    return one


@pytest.mark.slow
def test_tiny_sd_varies_a_parquet_dataset_killed_and_resumed(tmp_path: Path, sd_model: Path,
                                                             ray_address: str) -> None:
    source = hf_parquet_source(tmp_path / "pets")
    rows = killed_then_resumed(tmp_path, sd_job(sd_model, source, tmp_path / "x"), ray_address)
    assert len(rows) == 12
    assert Counter(r["init_id"] for r in rows) == {f"train.parquet#{i}": 2 for i in range(6)}
    labels = [0, 1, 0, 1, 1, 0]
    assert all(r["label"] == labels[int(r["init_id"].split("#")[1])] for r in rows)
    assert all(r["prompt"] == f"a photo of a {r['label_name']}" for r in rows)
    assert all(0.3 <= r["strength"] <= 0.7 for r in rows) and len({r["strength"] for r in rows}) == 12
    assert {(r["width"], r["height"]) for r in rows} == {(16, 16)}


@pytest.mark.slow
def test_class_unet_varies_a_synthgen_output_killed_and_resumed(
        tmp_path: Path, class_model: Path, class_output: Built, ray_address: str) -> None:
    spec = unet_job(class_model, class_output.path, tmp_path / "x")
    rows = killed_then_resumed(tmp_path, spec, ray_address)
    source = {(r["sample_id"]): r for r in committed_rows(class_output.path)}
    assert len(rows) == 21 and len({r["init_id"] for r in rows}) == 21
    assert all(r["init_id"].startswith("data/shard-") for r in rows)
    assert Counter(r["label_name"] for r in rows) == Counter(r["label_name"] for r in source.values())


def test_a_sweep_of_an_init_job_pilots_the_first_images_of_each_class(tmp_path: Path) -> None:
    from synthgen.commands.sweep import SweepRequest, plan_sweep

    real = digits_folder(tmp_path / "real")
    spec = {"model": {"source": "builtin:digits"}, "init": {"source": str(real), "per_image": 2},
            "output": {"uri": str(tmp_path / "out")}}
    plan = plan_sweep(SweepRequest(str(write_spec(tmp_path / "job.yaml", spec)),
                                   ("init.strength=0.3,0.7",), per_class=4))
    for cell, strength in zip(plan.cells, (0.3, 0.7), strict=True):
        pilot = cell.prepared.plan
        samples = [pilot.sample(i) for i in range(pilot.total)]
        assert pilot.total == 12 and {s.strength for s in samples} == {strength}
        assert Counter(s.init_id for s in samples) == {f"{c}/{n:03d}.png": 2 for c in "012" for n in (0, 1)}
        assert cell.full.total == 30 and cell.full.manifest.init == pilot.manifest.init
