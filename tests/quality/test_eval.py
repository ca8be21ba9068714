"""`synthgen eval` (Classification Accuracy Score) on known-good and known-bad data, diversity,
and one end-to-end `synthgen run` with a filter whose output eval reads through its markers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from synthgen.cli import main
from synthgen.cli.training import TRAIN_OPTIONS
from synthgen.output.diversity import NEAR_DUPLICATE, pair_stats
from synthgen.output.shard_schema import Provenance, ShardRow, shard_table
from synthgen.quality.evaluation import EvalConfig, evaluate
from synthgen.quality.features import DIGITS_SPACE, GENERIC_SPACE, load_labeled
from synthgen.spec.plan import Sample
from tests.conftest import synthgen, tiny_spec, write_spec
from tests.helpers import tiny_models
from tests.helpers.s3server import BUCKET


def digit_png_pixels(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` real training digits as 8-bit images (0..16 -> 0..255) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images[:count] * 255 / 16).round().astype(np.uint8), digits.target[:count]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_real_training_digits_score_like_real(tmp_path: Path) -> None:
    """Known-good: the real training split as an image folder scores a ratio of ~1."""
    images, labels = digit_png_pixels(1200)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / str(label)
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    report = evaluate(EvalConfig(str(tmp_path), "builtin:digits"))
    assert report["synthetic"]["images"] == 1200 and report["real_test"]["images"] == 597
    assert report["real_train"]["source"] == "builtin:digits:train"
    for result in report["classifiers"].values():
        assert result["ratio"] == pytest.approx(1.0, abs=0.02), result
        assert result["real_accuracy"] > 0.9
        confusion = np.array(result["confusion_matrix"])
        assert confusion.shape == (10, 10) and confusion.sum() == 597
        assert set(result["per_class_accuracy"]) == {str(d) for d in range(10)}
    for name, stats in report["diversity"]["synthetic"].items():
        real = report["diversity"]["real_test"][name]
        assert stats["near_duplicate_fraction"] == 0.0 and 0.15 < stats["mean_distance"] < 0.4
        assert abs(stats["mean_distance"] - real["mean_distance"]) < 0.05


@pytest.mark.slow
def test_shuffled_labels_score_near_chance(tmp_path: Path) -> None:
    """Known-bad: real digits with shuffled labels, written as a synthgen-style Parquet dataset."""
    images, labels = digit_png_pixels(100)
    shuffled = np.random.default_rng(0).permutation(labels)
    names = tuple(str(d) for d in range(10))
    rows = [ShardRow(Sample(i, 0, int(y), names[y], None, None, None, None), png_bytes(image), 8, 8)
            for i, (y, image) in enumerate(zip(shuffled, images, strict=True))]
    prov = Provenance("job", "real", "x", "none", "png")
    (tmp_path / "data").mkdir()
    pq.write_table(shard_table(rows, prov, names), tmp_path / "data" / "shard-00000.parquet")
    report = evaluate(EvalConfig(str(tmp_path), "builtin:digits"))
    assert report["synthetic"]["images"] == 100
    for result in report["classifiers"].values():
        assert result["accuracy"] < 0.25 and result["ratio"] < 0.3, result


def test_diversity_sees_a_collapsed_class() -> None:
    real = load_labeled("builtin:digits:train", DIGITS_SPACE)
    fives = real.features[real.labels == 5] / 16
    healthy = pair_stats(fives)
    noise = np.random.default_rng(0).normal(0, NEAR_DUPLICATE / 4, (40, fives.shape[1]))
    collapsed = pair_stats(fives[0] + noise)  # one digit, barely perturbed
    assert healthy.near_duplicates == 0 and healthy.mean_distance > 0.2
    assert collapsed.near_duplicate_fraction == 1.0 and collapsed.mean_distance < NEAR_DUPLICATE
    assert (healthy + collapsed).pairs == healthy.pairs + collapsed.pairs


def test_eval_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "nothing"), "--real", "builtin:digits"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "no such file or folder" in result.output
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--real", "builtin:digits:validation"])
    assert result.exit_code == 2 and "builtin:digits:train or builtin:digits:test" in result.output


def test_train_command_offers_every_train_config_field(tmp_path: Path) -> None:
    from dataclasses import fields

    from synthgen.train.config import TrainConfig

    assert {name for name, _, _ in TRAIN_OPTIONS} | {"output"} == {f.name for f in fields(TrainConfig)}
    shown = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
    assert f"[default: {TrainConfig().prediction_type}]" in shown and "[default: 32,64,64]" in shown
    result = CliRunner().invoke(main, [
        "train", "--source", "builtin:digits", "--output", str(tmp_path / "model"), "--steps", "2",
        "--batch-size", "8", "--block-out-channels", "8,16", "--norm-num-groups", "4", "--limit", "40",
        "--checkpoint-every", "1", "--threads", "1", "--channels", "1"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "model"
    assert (model / "model_index.json").is_file() and (model / "samples.png").is_file()
    config = json.loads((model / "unet" / "config.json").read_text())
    assert config["block_out_channels"] == [8, 16] and config["in_channels"] == 1
    bad = CliRunner().invoke(main, ["train", "--output", str(tmp_path / "x"), "--block-out-channels", "8,a"])
    assert bad.exit_code == 2 and "--block-out-channels" in bad.output


@pytest.fixture(scope="module")
def filtered_output(tmp_path_factory: pytest.TempPathFactory, class_model: Path, ray_address: str) -> Path:
    """3 classes x 7 images by the real `synthgen run`, filtered by a TorchScript classifier."""
    root = tmp_path_factory.mktemp("filtered")
    classifier = tiny_models.linear_classifier(root / "classifier")
    spec = tiny_spec(class_model, root / "out", filter={"classifier": str(classifier), "max_draws": 40},
                     output__order="by_class")
    run = synthgen("run", str(write_spec(root / "spec.yaml", spec)), address=ray_address)
    assert run.returncode == 0, run.stderr
    return root / "out"


def test_run_with_a_filter_then_eval_reads_it(filtered_output: Path, tmp_path: Path) -> None:
    index = pq.read_table(filtered_output / "index.parquet").to_pylist()
    assert sorted(r["sample_id"] for r in index) == list(range(21))
    assert all(r["filter_draws"] >= 1 and 0 < r["filter_score"] <= 1 for r in index)
    card = (filtered_output / "README.md").read_text()
    assert "## Quality per class" in card and "| class | images | acceptance | mean distance |" in card
    drawn = {c: sum(r["filter_draws"] for r in index if r["label_name"] == c) for c in "abc"}
    for c in "abc":
        assert f"| {c} | 7 | {7 / drawn[c]:.1%} |" in card
    # a "real" set: class a dark, b mid-gray, c bright noise
    rng = np.random.default_rng(0)
    for label, level in zip("abc", (40, 128, 215), strict=True):
        (tmp_path / label).mkdir()
        for i in range(8):
            pixels = np.clip(rng.normal(level, 30, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    run = synthgen("eval", str(filtered_output), "--real", str(tmp_path), "--real-train", str(tmp_path),
                   "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["synthetic"]["per_class"] == {"a": 7, "b": 7, "c": 7}
    assert report["classes"] == ["a", "b", "c"] and "16x16 RGB" in report["features"]
    for result in report["classifiers"].values():
        assert result["real_accuracy"] == 1.0 and result["ratio"] == result["accuracy"]
    assert set(report["diversity"]["synthetic"]) == {"a", "b", "c"}
    mismatch = CliRunner().invoke(main, ["eval", str(filtered_output), "--real", "builtin:digits"])
    assert mismatch.exit_code == 2 and "the real data has no class 'a'" in mismatch.output


def test_sources_on_s3_read_like_local_ones(filtered_output: Path, s3, tmp_path: Path) -> None:
    """A synthgen output (through its markers) and an image folder, both on S3."""
    for label in "ab":
        (tmp_path / "folder" / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8), 60 * i + (label == "b") * 100, np.uint8)).save(
                tmp_path / "folder" / label / f"{i}.png")
    s3.fs.put(str(filtered_output) + "/", f"{BUCKET}/filtered", recursive=True)
    s3.fs.put(str(tmp_path / "folder") + "/", f"{BUCKET}/folder", recursive=True)
    for local, remote in ((filtered_output, "filtered"), (tmp_path / "folder", "folder")):
        here = load_labeled(str(local), GENERIC_SPACE)
        there = load_labeled(f"s3://{BUCKET}/{remote}", GENERIC_SPACE)
        assert there.class_names == here.class_names and len(there) == len(here) > 0
        assert np.array_equal(there.labels, here.labels) and np.array_equal(there.features, here.features)


def digit_folder(root: Path, start: int, stop: int) -> Path:
    images, labels = digit_png_pixels(stop)
    for i in range(start, stop):
        (root / str(labels[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(root / str(labels[i]) / f"{i:04d}.png")
    return root


def test_real_plus_synthetic_answers_does_it_help(tmp_path: Path) -> None:
    """A small real set (60 digits) plus 540 more real-like images: real + synthetic beats real
    only for both classifiers; --train-real and --real-train are the same option."""
    small, extra = digit_folder(tmp_path / "small", 0, 60), digit_folder(tmp_path / "extra", 60, 600)
    run = CliRunner().invoke(main, ["eval", str(extra), "--real", "builtin:digits", "--train-real",
                                    str(small), "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert report["real_train"]["images"] == 60
    for result in report["classifiers"].values():
        assert result["real_plus_synthetic_accuracy"] > result["real_accuracy"] + 0.03, result
        ratio = result["real_plus_synthetic_accuracy"] / result["real_accuracy"]
        assert result["real_plus_synthetic_ratio"] == pytest.approx(ratio, abs=1e-3)
    text = CliRunner().invoke(main, ["eval", str(extra), "--real", "builtin:digits",
                                     "--real-train", str(small)])
    assert text.exit_code == 0 and "real + synthetic" in text.output and "real only" in text.output
