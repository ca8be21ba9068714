"""The `init:` section planned: classes from the source, k samples per image, the fingerprint."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.inputs.labeled_keys import job_manifest
from synthgen.models.pipeline import image_to_image_class
from synthgen.spec.load import load_spec
from synthgen.spec.plan import Plan
from tests.conftest import NEEDS_TORCH
from tests.helpers.init_sources import digits_folder


def write_spec(tmp_path: Path, init: dict, **sections: dict) -> Path:
    spec = {"init": init, "output": {"uri": str(tmp_path / "out"), "shard_size": 8},
            "sampler": {"steps": 10}, **sections}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def plan_of(path: Path, *overrides: str) -> Plan:
    spec = load_spec(path, overrides)
    return Plan.build(spec, job_manifest(spec))


def test_the_folder_gives_k_samples_per_image_with_its_classes(tmp_path: Path) -> None:
    digits_folder(tmp_path / "real")
    plan = plan_of(write_spec(tmp_path, {"source": "real", "strength": 0.5, "per_image": 2}))
    samples = [plan.sample(i) for i in range(plan.total)]
    assert plan.total == 30 and plan.manifest.class_names == ("0", "1", "2")
    assert Counter(s.init_id for s in samples) == {f"{c}/{n:03d}.png": 2 for c in "012" for n in range(5)}
    assert all(s.init_id.split("/")[0] == s.label_name == s.init_label for s in samples)
    assert {s.strength for s in samples} == {0.5}
    assert plan_of(write_spec(tmp_path, {"source": "real"}), "init.per_image=3").total == 45


def test_classes_pick_and_rename_the_source_classes(tmp_path: Path) -> None:
    digits_folder(tmp_path / "real")
    subset = plan_of(write_spec(tmp_path, {"source": "real"}, classes={"names": ["2", "0"]}))
    assert subset.manifest.class_names == ("2", "0") and subset.total == 10
    renamed = plan_of(write_spec(tmp_path, {"source": "real"},
                                 classes={"names": {"0": "zero", "1": "one"}, "templates": ["a {name}"]}))
    sample = renamed.sample(0)
    assert renamed.manifest.class_names == ("zero", "one")
    assert sample.init_label == {"zero": "0", "one": "1"}[sample.label_name]
    assert sample.prompt == f"a {sample.label_name}"


def test_a_strength_range_is_drawn_per_sample_from_its_seed(tmp_path: Path) -> None:
    path = write_spec(tmp_path, {"source": "builtin:digits", "strength": {"uniform": [0.3, 0.7]}})
    plan = plan_of(path)
    strengths = [plan.sample(i).strength for i in range(200)]
    assert plan.total == 1200 and all(0.3 <= s <= 0.7 for s in strengths) and len(set(strengths)) == 200
    assert strengths == [plan_of(path).sample(i).strength for i in range(200)]
    assert plan.sample(5).init_id.startswith("load_digits#")


def test_the_source_fingerprint_is_part_of_job_id(tmp_path: Path) -> None:
    digits_folder(tmp_path / "real")
    path = write_spec(tmp_path, {"source": "real", "per_image": 2})
    first = plan_of(path).job_id
    assert plan_of(path, "compute.batch_size=3").job_id == first
    image = tmp_path / "real" / "1" / "002.png"
    os.utime(image, (1, 1))  # same bytes, another mtime: the listing says the file changed
    assert plan_of(path).job_id != first
    assert plan_of(path, "init.per_image=3").job_id != plan_of(path).job_id


@NEEDS_TORCH  # diffusers' pipeline classes import torch
def test_only_pipelines_with_an_img2img_counterpart_can_vary_images() -> None:
    assert image_to_image_class("StableDiffusionXLPipeline") == "StableDiffusionXLImg2ImgPipeline"
    assert image_to_image_class("PixArtAlphaPipeline") is None


def bad(tmp_path: Path, init: dict) -> str:
    result = CliRunner().invoke(main, ["plan", str(write_spec(tmp_path, init))])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and not (tmp_path / "out").exists()
    return lines[0]


def test_bad_init_sources_get_one_line_and_exit_2(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes((digits_folder(tmp_path / "d") / "0" / "000.png").read_bytes())
    assert "one sub-folder of images per class" in bad(tmp_path, {"source": str(flat)})
    real = digits_folder(tmp_path / "real")
    (real / "3").mkdir()
    assert "class '3' has no images" in bad(tmp_path, {"source": str(real)})
    (real / "3").rmdir()
    (real / "1" / "009.png").write_bytes(b"not an image at all")
    assert "1/009.png" in bad(tmp_path, {"source": str(real)}) and "not a readable image" in bad(
        tmp_path, {"source": str(real)})


@pytest.mark.parametrize("strength", [1.5, -0.1, {"uniform": [0.2, 1.2]}])
def test_a_strength_outside_0_1_is_refused(tmp_path: Path, strength: object) -> None:
    line = bad(tmp_path, {"source": "builtin:digits", "strength": strength})
    assert "init.strength" in line and "[0, 1]" in line


@pytest.mark.parametrize("order", ["interleaved", "by_class"])
def test_each_sample_varies_the_image_of_its_index_within_its_class(tmp_path: Path, order: str) -> None:
    """Sample k of a class varies image k // per_image, wherever the order puts the sample."""
    digits_folder(tmp_path / "real")
    plan = plan_of(write_spec(tmp_path, {"source": "real", "per_image": 2},
                              output={"uri": str(tmp_path / "out"), "order": order,
                                      "splits": {"train": 0.6, "test": 0.4}}))
    for e, entry in enumerate(plan.manifest.entries):
        for k in range(entry.count):
            sample = plan.sample(plan.order.sample_id(e, k))
            assert (sample.label, sample.init_id) == (entry.label, entry.inits[k // 2])
    labels = [plan.sample(i).label for i in range(plan.order.splits[0].size)]
    assert (labels == sorted(labels)) == (order == "by_class"), "interleaved splits mix the classes"


def test_strength_takes_what_sampler_ranges_take(tmp_path: Path) -> None:
    plan = plan_of(write_spec(tmp_path, {"source": "builtin:digits", "strength": {"choice": [0.25, 0.75]}}))
    assert {plan.sample(i).strength for i in range(100)} == {0.25, 0.75}
    for strength, words in ((True, "boolean"), ({"normal": [0, 1]}, "unknown distribution"),
                            ({"uniform": [0.7, 0.3]}, "lo > hi")):
        assert words in bad(tmp_path, {"source": "builtin:digits", "strength": strength})


def test_init_storage_options_are_execution_only_and_never_stored(tmp_path: Path) -> None:
    from synthgen.output.job_record import JobRecord, ManifestRef, ModelRecord

    digits_folder(tmp_path / "real")
    plain = plan_of(write_spec(tmp_path, {"source": "real"}))
    secret = "s3cr3t-value-123"
    path = write_spec(tmp_path, {"source": "real", "storage_options": {"secret": secret, "anon": True}})
    with_options = plan_of(path)
    assert with_options.job_id == plain.job_id
    record = JobRecord(with_options.job_id, with_options, ModelRecord(source="builtin:digits", family="unet"))
    stored = json.dumps(record.job_file(ManifestRef(file="m", sha256="", bytes=0, entries=1)).to_json())
    assert secret not in stored and '"anon": true' in stored


def test_a_key_that_leaves_the_source_is_refused(tmp_path: Path) -> None:
    from synthgen.errors import UserError
    from synthgen.inputs.labeled_keys import read_keyed

    real = digits_folder(tmp_path / "real")
    (tmp_path / "outside.png").write_bytes((real / "0" / "000.png").read_bytes())
    assert read_keyed(str(real), {}, ["0/000.png"])["0/000.png"] == (real / "0" / "000.png").read_bytes()
    for key in ("../outside.png", "/etc/passwd", "0/../../outside.png"):
        with pytest.raises(UserError, match="init.source"):
            read_keyed(str(real), {}, [key])
