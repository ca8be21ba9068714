"""Class-conditional DiT pipelines: model_label ids, id2label names, the null class, the VAE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from synthgen.engine.driver import prepare
from synthgen.errors import UserError
from synthgen.models.registry import inspect_model, load_adapter
from synthgen.spec.job_spec import ModelSpec
from synthgen.spec.load import validate_spec
from tests.conftest import synthgen, write_spec
from tests.helpers import tiny_models
from tests.helpers.dataset_outputs import committed_rows

CLASSES = ("tench, Tinca tinca", "goldfish", "great white shark, white shark")

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def dit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.dit_pipeline(tmp_path_factory.mktemp("models") / "tiny-dit", CLASSES)


def dit_spec(model: Path, out: Path, classes: dict[str, Any], **sampler: Any) -> dict[str, Any]:
    return {
        "name": "tiny-dit", "seed": 0, "model": {"source": str(model)},
        "sampler": {"scheduler": "euler", "steps": 2, "guidance_scale": 4.0, **sampler},
        "classes": classes, "output": {"uri": str(out), "shard_size": 3, "order": "by_class"},
        "compute": {"batch_size": 4, "workers": 1},
    }


def test_class_ids_and_names_end_to_end(tmp_path: Path, dit_model: Path, ray_address: str) -> None:
    classes = {"count": 2, "entries": [
        {"name": "fish", "model_label": 1},          # an id, under the dataset's own name
        {"name": "Tinca tinca"},                      # a synonym from id2label
        {"name": "shark", "model_label": 2, "count": 3},
    ]}
    out = tmp_path / "out"
    result = synthgen("run", str(write_spec(tmp_path / "job.yaml", dit_spec(dit_model, out, classes))),
                      address=ray_address)
    assert result.returncode == 0, result.stderr

    rows = committed_rows(out)
    assert [r["sample_id"] for r in rows] == list(range(7))
    assert [r["label_name"] for r in rows] == ["fish"] * 2 + ["Tinca tinca"] * 2 + ["shark"] * 3
    assert [r["label"] for r in rows] == [0, 0, 1, 1, 2, 2, 2]
    assert {(r["width"], r["height"], r["scheduler"]) for r in rows} == {(16, 16, "euler")}
    assert all(r["prompt"] is None for r in rows)
    job = json.loads((out / "job.json").read_text())
    assert job["model"]["family"] == "dit"
    assert {r["model_revision"] for r in rows} == {job["model"]["revision"]}


def test_guidance_uses_the_null_class_and_the_noise_half(tmp_path: Path, dit_model: Path) -> None:
    spec = validate_spec(dit_spec(dit_model, tmp_path / "out", {"count": 2, "names": ["goldfish", "tench"]}))
    prepared = prepare(spec)
    assert prepared.info.null_class == len(CLASSES) and prepared.info.sample_size == 16
    adapter = load_adapter(prepared.info, spec.model)
    samples = prepared.plan.samples(prepared.plan.shard(0))
    assert adapter.conditions(samples, guided=True).tolist() == [3, 3, 3, 1, 1, 0]
    out = adapter.predict(torch.zeros(2, 4, 8, 8), torch.tensor(10), torch.tensor([0, 1]))
    assert out.shape == (2, 4, 8, 8), "learned sigma is dropped: the loop gets the noise"
    images = adapter.generate(samples, spec.sampler)
    assert images.shape == (3, 16, 16, 3) and len({i.tobytes() for i in images}) == 3


def test_unknown_class_name_is_refused_naming_id2label(tmp_path: Path, dit_model: Path) -> None:
    classes = {"count": 1, "names": ["goldfish", "cat"]}
    with pytest.raises(UserError, match="id2label") as caught:
        prepare(validate_spec(dit_spec(dit_model, tmp_path / "out", classes)))
    assert (caught.value.field, caught.value.value) == ("classes[1].name", "cat")


def test_model_label_out_of_range_and_null_class_are_refused(tmp_path: Path, dit_model: Path) -> None:
    for label in (3, 7):
        classes = {"count": 1, "entries": [{"name": "x", "model_label": label}]}
        with pytest.raises(UserError, match=r"class ids 0\.\.2") as caught:
            prepare(validate_spec(dit_spec(dit_model, tmp_path / "out", classes)))
        assert caught.value.field == "classes[0].model_label"


def test_size_is_the_trained_size(tmp_path: Path, dit_model: Path) -> None:
    classes = {"count": 1, "names": ["goldfish"]}
    with pytest.raises(UserError, match="16px images only") as caught:
        prepare(validate_spec(dit_spec(dit_model, tmp_path / "out", classes, width=32)))
    assert caught.value.field == "sampler.width"
    prepare(validate_spec(dit_spec(dit_model, tmp_path / "out", classes, height=16, width=16)))


def test_legacy_transformer2d_layout_is_detected(tmp_path: Path, dit_model: Path) -> None:
    """facebook/DiT-XL-2-256 names its transformer Transformer2DModel; the folder is the same."""
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(dit_model, legacy)
    index = json.loads((legacy / "model_index.json").read_text())
    index["transformer"] = ["diffusers", "Transformer2DModel"]
    index.pop("_class_name")
    (legacy / "model_index.json").write_text(json.dumps(index))
    info = inspect_model(ModelSpec(source=str(legacy)))
    assert info.family == "dit" and info.num_class_embeds == 3
    assert info.model_label(None, "goldfish", 0) == 1
    adapter = load_adapter(info, ModelSpec(source=str(legacy)))
    assert type(adapter.transformer).__name__ in ("Transformer2DModel", "DiTTransformer2DModel")
