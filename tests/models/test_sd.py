"""Stable-Diffusion-style pipelines through synthgen's own loop: prompts, templates, CFG, sizes."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from synthgen.engine.driver import prepare
from synthgen.engine.worker import Worker
from synthgen.errors import UserError
from synthgen.models.registry import load_adapter
from synthgen.spec.load import validate_spec
from tests.conftest import synthgen, write_spec
from tests.helpers import tiny_models
from tests.helpers.dataset_outputs import committed_rows

TEMPLATES = ["a photo of a {name}", "a drawing of a {name}"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def sd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


def sd_spec(model: Path, out: Path, **sections: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny-sd", "seed": 0, "model": {"source": str(model)},
        "sampler": {"scheduler": "ddim", "steps": 2, "guidance_scale": 3.0},
        "output": {"uri": str(out), "shard_size": 4, "order": "by_class"},
        "compute": {"batch_size": 4, "workers": 1},
    }
    spec.update(sections)
    return spec


def pixels(row: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))


def test_prompt_file_job_end_to_end(tmp_path: Path, sd_model: Path, ray_address: str) -> None:
    manifest = tmp_path / "prompts.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "a photo of a cat", "label": "cat"},
        {"prompt": "a red car", "negative_prompt": "blurry", "label": "car"},
        {"prompt": "a blue ship"},
    ]) + "\n")
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "job.yaml",
                      sd_spec(sd_model, out, prompts={"source": str(manifest), "count": 3}))
    result = synthgen("run", str(spec), address=ray_address)
    assert result.returncode == 0, result.stderr

    rows = committed_rows(out)
    assert [r["sample_id"] for r in rows] == list(range(9))
    assert [r["prompt"] for r in rows] == ["a photo of a cat"] * 3 + ["a red car"] * 3 + ["a blue ship"] * 3
    assert [r["negative_prompt"] for r in rows] == [None] * 3 + ["blurry"] * 3 + [None] * 3
    assert [r["label_name"] for r in rows] == ["cat"] * 3 + ["car"] * 3 + [None] * 3
    assert [r["label"] for r in rows] == [0] * 3 + [1] * 3 + [-1] * 3
    job = json.loads((out / "job.json").read_text())
    assert job["model"]["family"] == "sd"
    assert {r["model_revision"] for r in rows} == {job["model"]["revision"]}
    assert job["model"]["revision"].startswith("sha256:")
    assert {(r["width"], r["height"]) for r in rows} == {(16, 16)}
    assert len({pixels(r).tobytes() for r in rows}) == 9, "every sample has its own noise"


def test_templates_fill_names_in_turn_and_record_the_template(tmp_path: Path, sd_model: Path) -> None:
    classes = {"names": ["cat", "dog"], "count": 3, "templates": TEMPLATES}
    spec = sd_spec(sd_model, tmp_path / "out", classes=classes, sampler={"scheduler": "dpm++", "steps": 2})
    worker = Worker(prepare(validate_spec(spec)).job, threads=1)
    for shard in range(worker.plan.num_shards):
        worker.run_shard(shard)
    rows = committed_rows(tmp_path / "out")
    assert [(r["label_name"], r["template"], r["prompt"]) for r in rows] == [
        ("cat", TEMPLATES[0], "a photo of a cat"), ("cat", TEMPLATES[1], "a drawing of a cat"),
        ("cat", TEMPLATES[0], "a photo of a cat"),
        ("dog", TEMPLATES[0], "a photo of a dog"), ("dog", TEMPLATES[1], "a drawing of a dog"),
        ("dog", TEMPLATES[0], "a photo of a dog"),
    ]
    assert [r["label"] for r in rows] == [0, 0, 0, 1, 1, 1]
    assert {r["scheduler"] for r in rows} == {"dpm++"}


def test_each_distinct_prompt_is_encoded_once(tmp_path: Path, sd_model: Path) -> None:
    spec = sd_spec(sd_model, tmp_path / "out", classes={"names": ["cat", "dog"], "count": 4,
                                                         "templates": TEMPLATES})
    prepared = prepare(validate_spec(spec))
    adapter = load_adapter(prepared.info, prepared.plan.spec.model)
    samples = prepared.plan.samples(prepared.plan.shard(0)) + prepared.plan.samples(prepared.plan.shard(1))
    encoded: list[str] = []
    encode = adapter.prompts._encode

    def recording_encode(prompts: list[str]) -> Any:
        encoded.extend(prompts)
        return encode(prompts)

    adapter.prompts._encode = recording_encode
    cond = adapter.conditions(samples, guided=True)
    adapter.conditions(samples, guided=True)
    assert sorted(encoded) == sorted(["", "a photo of a cat", "a drawing of a cat",
                                      "a photo of a dog", "a drawing of a dog"])
    assert cond.shape[0] == 2 * len(samples)
    assert cond[:len(samples)].eq(cond[0]).all(), "unconditional rows first, all the empty prompt"


def test_negative_prompt_and_guidance_change_the_image(tmp_path: Path, sd_model: Path) -> None:
    items = [{"prompt": "a red car"}, {"prompt": "a red car", "negative_prompt": "blurry"}]
    spec = validate_spec(sd_spec(sd_model, tmp_path / "out", prompts={"items": items}))
    prepared = prepare(spec)
    adapter = load_adapter(prepared.info, spec.model)
    plain, negative = prepared.plan.samples(prepared.plan.shard(0))
    negative = dataclasses.replace(negative, seed=plain.seed)  # same noise, only the negative differs
    images = adapter.generate([plain, negative], spec.sampler)
    assert not np.array_equal(images[0], images[1])
    unguided = [dataclasses.replace(s, guidance_scale=1.0) for s in (plain, negative)]  # the row's own
    images = adapter.generate(unguided, spec.sampler)
    assert np.array_equal(images[0], images[1]), "without guidance the negative prompt is unused"


def test_size_is_a_multiple_of_the_vae_factor(tmp_path: Path, sd_model: Path) -> None:
    items = {"items": ["a photo of a cat"]}
    spec = validate_spec(sd_spec(sd_model, tmp_path / "out", prompts=items,
                                 sampler={"steps": 2, "height": 24, "width": 12}))
    prepared = prepare(spec)
    images = load_adapter(prepared.info, spec.model).generate(
        prepared.plan.samples(prepared.plan.shard(0)), spec.sampler)
    assert images.shape == (1, 24, 12, 3)

    with pytest.raises(UserError, match="multiple of 2") as caught:
        prepare(validate_spec(sd_spec(sd_model, tmp_path / "o2", prompts=items, sampler={"height": 15})))
    assert caught.value.field == "sampler.height"


def test_text_to_image_refuses_classes_without_prompts(tmp_path: Path, sd_model: Path) -> None:
    spec = write_spec(tmp_path / "job.yaml",
                      sd_spec(sd_model, tmp_path / "out", classes={"names": ["cat"], "count": 2}))
    result = synthgen("plan", str(spec))
    assert result.returncode == 2
    assert "templates" in result.stderr and "text-to-image" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_class_entry_prompts_and_template_without_name(tmp_path: Path, sd_model: Path) -> None:
    classes = {"entries": [{"name": "cat", "prompts": ["a cat on a sofa", "a cat in the snow"]},
                           {"name": "dog"}], "templates": ["a photo of a {name}"], "count": 2}
    prepared = prepare(validate_spec(sd_spec(sd_model, tmp_path / "out", classes=classes)))
    samples = prepared.plan.samples(prepared.plan.shard(0))
    assert [(s.prompt, s.template) for s in samples] == [
        ("a cat on a sofa", None), ("a cat in the snow", None),
        ("a photo of a dog", "a photo of a {name}"), ("a photo of a dog", "a photo of a {name}")]

    with pytest.raises(UserError, match="{name}"):
        validate_spec(sd_spec(sd_model, tmp_path / "o2",
                              classes={"names": ["cat"], "templates": ["a photo"]}))
