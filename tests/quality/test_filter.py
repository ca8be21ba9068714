"""The label-fidelity filter: spec checks, each classifier kind, and the worker's regeneration.

Classifiers are real models saved to disk: TorchScript and pickled torch modules, a tiny random
ViT (transformers) and a tiny random CLIP, and the built-in digits SVM. The worker runs bare on
the tiny class model (classes a, b, c; 8x8 gray).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import Worker
from synthgen.errors import UserError
from synthgen.quality.filter import FilterRejected, LabelFilter
from synthgen.quality.judges import DigitsJudge
from synthgen.spec.job_spec import FilterSpec
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import sample_seed
from synthgen.storage.layout import marker_path
from tests.conftest import tiny_spec
from tests.helpers import tiny_models
from tests.helpers.tiny_models import PixelLinear

CPU = torch.device("cpu")
BATCH_SIZE_BOUND = 1  # as in test_worker: another batch size moves a pixel by at most 1 level


class AlwaysFirst(torch.nn.Module):
    """Sees every image as its first class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 3) + torch.tensor([5.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def linear_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.linear_classifier(tmp_path_factory.mktemp("linear"))


@pytest.fixture(scope="module")
def always_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("always") / "always-a.pt"
    torch.jit.save(torch.jit.script(AlwaysFirst()), path)
    return path


def filtered_worker(model: Path, out: Path, classifier: Path | str, **changes) -> Worker:
    spec = tiny_spec(model, out, filter={"classifier": str(classifier), **changes}, output__order="by_class")
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    return Worker(prepared.job, threads=1)


def rows(worker: Worker, index: int) -> list[dict]:
    marker = worker.store.read_json(marker_path(index))
    return pq.read_table(worker.store.path(marker["file"])).to_pylist()


def pixels_of(row: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))[..., None]


# --- the spec and plan-time checks ---

def test_filter_spec_needs_a_rule_and_known_fields(tmp_path: Path, class_model: Path) -> None:
    with pytest.raises(UserError, match="filter: .*needs a rule"):
        validate_spec(tiny_spec(class_model, tmp_path, filter={"classifier": "builtin:digits",
                                                               "require_match": False}))
    with pytest.raises(UserError, match="filter.threshold: .*valid fields here: classifier, kind"):
        validate_spec(tiny_spec(class_model, tmp_path, filter={"classifier": "x", "threshold": 0.5}))
    with pytest.raises(UserError, match="filter.min_prob"):
        validate_spec(tiny_spec(class_model, tmp_path, filter={"classifier": "x", "min_prob": 1.5}))


@pytest.mark.parametrize(("classifier", "message"), [
    ("builtin:digits", "its classes have no 'a'"),
    ("./no/such/classifier.pt", "no such file or folder"),
    ("s3://bucket/classifier", "a local file or folder"),
])
def test_bad_classifiers_are_refused_before_any_write(tmp_path: Path, class_model: Path,
                                                     classifier: str, message: str) -> None:
    spec = validate_spec(tiny_spec(class_model, tmp_path / "out", filter={"classifier": classifier}))
    with pytest.raises(UserError, match=message) as caught:
        prepare(spec)
    assert caught.value.field == "filter.classifier"
    assert not (tmp_path / "out").exists()


def test_unlabeled_prompts_cannot_be_filtered(tmp_path: Path, plain_model: Path, always_a: Path) -> None:
    spec = tiny_spec(plain_model, tmp_path / "out", sampler__guidance_scale=1.0,
                     filter={"classifier": str(always_a)})
    del spec["classes"]
    spec["prompts"] = ["a cat", {"prompt": "a dog", "label": "dog"}]
    with pytest.raises(UserError, match="some prompts have none"):
        prepare(validate_spec(spec))


# --- classifiers ---

def test_builtin_digits_classifier_is_accurate_and_deterministic() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    held_out = (digits.images[1200:] * 255 / 16).round().astype(np.uint8)[..., None]
    truth = digits.target[1200:]
    first, second = DigitsJudge(), DigitsJudge()
    probs = first.probabilities(held_out)
    assert np.array_equal(probs, second.probabilities(held_out))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == truth).mean() > 0.93
    verdict = LabelFilter(FilterSpec(classifier="builtin:digits", min_prob=0.5), first,
                          np.arange(10), tuple("0123456789")).judge(held_out, truth.tolist())
    wrong = np.random.default_rng(0).permutation(truth)
    rejected = LabelFilter(FilterSpec(classifier="builtin:digits"), first, np.arange(10),
                           tuple("0123456789")).judge(held_out, wrong.tolist())
    assert verdict.accepted.mean() > 0.9 and rejected.accepted.mean() < 0.2


def test_torch_module_saved_whole_or_scripted_gives_the_same_scores(tmp_path: Path,
                                                                   linear_classifier: Path) -> None:
    torch.save(PixelLinear(), tmp_path / "whole.pt")
    (tmp_path / "classes.json").write_text(json.dumps(["c", "b", "a"]))  # outputs named in reverse
    pixels = np.random.default_rng(1).integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    labels = [0, 1, 2, 0, 1, 2]
    names = ("a", "b", "c")
    scripted = LabelFilter.load(FilterSpec(classifier=str(linear_classifier)), names, CPU)
    whole = LabelFilter.load(FilterSpec(classifier=str(tmp_path / "whole.pt"), trusted=True), names, CPU)
    logits = PixelLinear()(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255)
    expected = torch.softmax(logits, dim=1).detach().numpy()
    assert np.allclose(scripted.judge(pixels, labels).scores, expected[range(6), labels], atol=1e-6)
    # whole.pt's classes.json reverses the names: class "a" is its output 2
    assert np.allclose(whole.judge(pixels, labels).scores, expected[range(6), [2, 1, 0, 2, 1, 0]], atol=1e-6)


def test_transformers_image_classifier_matches_classes_by_name(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=16,
                       id2label={0: "Zebra", 1: "tench, Tinca tinca", 2: "a"},
                       label2id={"Zebra": 0, "tench, Tinca tinca": 1, "a": 2})
    model = ViTForImageClassification(config).eval()
    model.save_pretrained(tmp_path)
    processor = ViTImageProcessor(size={"height": 8, "width": 8})
    processor.save_pretrained(tmp_path)
    spec = FilterSpec(classifier=str(tmp_path), min_prob=0.34, require_match=False)
    label_filter = LabelFilter.load(spec, ("a", "zebra", "tench"), CPU)
    assert label_filter.targets.tolist() == [2, 0, 1]
    pixels = np.random.default_rng(2).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    verdict = label_filter.judge(pixels, [0, 1, 2, 0])
    rgb = [Image.fromarray(p[..., 0]).convert("RGB") for p in pixels]
    with torch.no_grad():
        probs = torch.softmax(model(**processor(images=rgb, return_tensors="pt")).logits, dim=1).numpy()
    assert np.allclose(verdict.scores, probs[range(4), [2, 0, 1, 2]], atol=1e-5)
    assert verdict.accepted.tolist() == (verdict.scores >= 0.34).tolist()


def test_clip_zero_shot_over_the_job_classes(tmp_path: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = tiny_models.clip_tokenizer()
    text = {"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": len(tokenizer) - 2,
            "eos_token_id": len(tokenizer) - 1, "pad_token_id": len(tokenizer) - 1}
    vision = {"image_size": 8, "patch_size": 4, "hidden_size": 16, "intermediate_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2}
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(tmp_path)
    images = CLIPImageProcessor(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(tmp_path)
    names = ("cat", "dog", "car")
    label_filter = LabelFilter.load(FilterSpec(classifier=str(tmp_path)), names, CPU)
    pixels = np.random.default_rng(3).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    probs = label_filter.model.probabilities(pixels)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1.0)
    verdict = label_filter.judge(pixels, [0, 1, 2, 0, 1])
    assert verdict.accepted.tolist() == (probs.argmax(axis=1) == [0, 1, 2, 0, 1]).tolist()
    assert set(verdict.predicted) <= set(names)


# --- the worker's regeneration loop ---

def test_rejected_samples_are_redrawn_with_derived_seeds(tmp_path: Path, class_model: Path,
                                                         linear_classifier: Path) -> None:
    worker = filtered_worker(class_model, tmp_path / "out", linear_classifier, max_draws=40)
    result = worker.run_shard(1)
    table = rows(worker, 1)
    assert result.committed and [r["sample_id"] for r in table] == list(range(5, 10))
    draws = [r["filter_draws"] for r in table]
    assert min(draws) >= 1 and max(draws) > 1, draws  # some samples really were regenerated
    judge = worker.filter
    for row in table:
        assert row["seed"] == sample_seed(0, row["sample_id"], row["filter_draws"] - 1)
        verdict = judge.judge(pixels_of(row)[None], [row["label"]])
        assert verdict.accepted[0] and verdict.scores[0] == pytest.approx(row["filter_score"])
    # the regenerated image is the one its seed alone gives
    redrawn = next(r for r in table if r["filter_draws"] > 1)
    sample = replace(worker.plan.sample(redrawn["sample_id"]), seed=redrawn["seed"])
    alone = worker.adapter.generate([sample], worker.spec.sampler)[0]
    assert np.abs(alone.astype(int) - pixels_of(redrawn).astype(int)).max() <= BATCH_SIZE_BOUND
    # and the first draw of that sample was rejected
    first = replace(sample, seed=sample_seed(0, redrawn["sample_id"]))
    first_pixels = worker.adapter.generate([first], worker.spec.sampler)
    assert not judge.judge(first_pixels, [redrawn["label"]]).accepted[0]
    # a retried shard regenerates the same accepted draws bit for bit
    data = worker.store.read_bytes(result.marker.file)
    worker.store.delete(marker_path(1))
    again = worker.run_shard(1, attempt_no=1)
    assert worker.store.read_bytes(again.marker.file) == data


def test_attempt_cap_fails_the_shard_naming_sample_and_class(tmp_path: Path, class_model: Path,
                                                             always_a: Path) -> None:
    worker = filtered_worker(class_model, tmp_path / "out", always_a, max_draws=3)
    assert worker.run_shard(0).committed  # shard 0 holds only class a: all accepted at once
    with pytest.raises(FilterRejected) as caught:
        worker.run_shard(1)  # samples 5, 6 are class a; 7.. are class b
    message = str(caught.value)
    assert "shard 1: sample 7 (class 'b') was rejected by the filter in all 3 draws" in message
    assert "the classifier saw 'a'" in message and "3 sample(s) of this shard failed" in message
    assert not worker.store.exists(marker_path(1)) and worker.store.list("data") == [
        worker.store.read_json(marker_path(0))["file"].split("/")[1]]


def test_without_a_filter_the_filter_columns_are_null(tmp_path: Path, class_model: Path) -> None:
    prepared = prepare(validate_spec(tiny_spec(class_model, tmp_path / "out", output__order="by_class")))
    worker = Worker(prepared.job, threads=1)
    worker.run_shard(0)
    table = rows(worker, 0)
    assert all(r["filter_score"] is None and r["filter_draws"] is None for r in table)
    assert [r["seed"] for r in table] == [sample_seed(0, i) for i in range(5)]
    assert worker.store.read_json(marker_path(0))["diversity"]["0"][0] == 5  # 5 images of class a
