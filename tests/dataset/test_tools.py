"""preview, export, show, the dataset card, the run log and the progress lines, on a class job
output and on prompt-job outputs (partly labeled, and unlabeled)."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

import synthgen
from synthgen.output.catalog import Catalog
from tests.conftest import synthgen as cli
from tests.helpers.dataset_outputs import FOX, FROG, SECRET_VALUE, Built
from tests.helpers.s3server import BUCKET, S3

LABELS = ("a", "b", "c")


def image_bytes(path: Path) -> dict[int, bytes]:
    """sample_id -> stored image bytes, read straight from the shards."""
    out = {}
    for f in synthgen.data_files(str(path)):
        table = pq.read_table(f, columns=["sample_id", "image"]).to_pydict()
        out.update({sid: cell["bytes"] for sid, cell in zip(table["sample_id"], table["image"], strict=True)})
    return out


# preview ---------------------------------------------------------------------------------------

def test_preview_cli_draws_each_class_upscaled_with_nearest_neighbour(class_output: Built,
                                                                      tmp_path: Path) -> None:
    from PIL import ImageFont

    from synthgen.output.preview import FONT_SIZE, PAD, PreviewOptions, label_width, preview_rows

    grid = tmp_path / "grid.png"
    run = cli("preview", str(class_output.path), "--output", str(grid))
    assert run.returncode == 0, run.stderr
    sheet = Image.open(grid)
    assert sheet.format == "PNG"
    rows, hidden = preview_rows(Catalog.open(str(class_output.path)), PreviewOptions())
    assert [r.title for r in rows] == list(LABELS) and hidden == 0
    order = Catalog.open(str(class_output.path)).plan.order  # class b's samples, in their order
    assert rows[1].sample_ids == tuple(order.sample_id(1, k) for k in range(7))
    cell = 64  # 8 px images, 8x; 7 images a class, so 7 columns
    labels = label_width(list(LABELS), ImageFont.load_default(size=FONT_SIZE))
    assert labels < 40  # one-letter class names: a narrow label column
    assert sheet.size[1] == FONT_SIZE + 2 * PAD + 3 * (cell + PAD) + PAD
    assert sheet.size[0] >= labels + 7 * (cell + PAD) + PAD
    second_of_b = Catalog.open(str(class_output.path)).plan.order.sample_id(1, 1)
    original = np.array(synthgen.open_dataset(str(class_output.path))[second_of_b][0].convert("RGB"))
    top, left = FONT_SIZE + 2 * PAD + (cell + PAD), labels + (cell + PAD)
    tile = np.array(sheet.convert("RGB"))[top:top + cell, left:left + cell]
    assert np.array_equal(tile, original.repeat(8, axis=0).repeat(8, axis=1))


def test_preview_of_a_prompt_job_has_one_row_per_prompt(prompt_output: Built) -> None:
    from synthgen.output.preview import PreviewOptions, preview_rows, render

    output = Catalog.open(str(prompt_output.path))
    rows, hidden = preview_rows(output, PreviewOptions())
    assert [(r.title, r.sample_ids) for r in rows] == [
        (f"[fox] {FOX}", (0, 1, 2)), ("a blue whale", (3, 4)), (f"[frog] {FROG}", (5, 6, 7))]
    assert render(output).size[1] < render(output, PreviewOptions(per_row=2, max_rows=2)).size[1] * 2


def test_preview_caps_the_rows_and_says_so(unlabeled_output: Built) -> None:
    from synthgen.output.preview import PreviewOptions, preview_rows, render

    output = Catalog.open(str(unlabeled_output.path))
    rows, hidden = preview_rows(output, PreviewOptions(max_rows=20))
    assert len(rows) == 20 and hidden == 5
    assert rows[19].title == "prompt number 19" and rows[19].sample_ids == (19,)
    capped = render(output, PreviewOptions(max_rows=20)).size[1]
    assert capped > render(output, PreviewOptions(max_rows=19)).size[1]


def test_the_card_embeds_the_same_preview(class_output: Built) -> None:
    from synthgen.output.preview import preview_png

    card = (class_output.path / "README.md").read_text()
    assert "](preview.png)" in card
    stored = (class_output.path / "preview.png").read_bytes()
    assert stored == preview_png(Catalog.open(str(class_output.path)))  # deterministic


# the dataset card ------------------------------------------------------------------------------

def test_card_has_counts_settings_seeds_and_versions(class_output: Built) -> None:
    import diffusers
    import torch

    card = (class_output.path / "README.md").read_text()
    for name in LABELS:
        assert f"| {name} | 7 |" in card
    assert "ddim, 4 steps, guidance scale 2.0" in card
    assert "job seed 0" in card and "`seed` column" in card
    assert f"diffusers {diffusers.__version__}, torch {torch.__version__}" in card
    assert "| images | 21 (png, 8x8) |" in card
    header = yaml.safe_load(card.split("---\n")[1])
    assert "license" not in header  # the tiny model states none
    assert "model license: not stated" in card


def test_card_carries_the_model_license(class_output: Built) -> None:
    from synthgen.output.card import dataset_card, hub_license

    catalog = Catalog.open(str(class_output.path))
    model = catalog.record.model.model_copy(update={"license": "MIT"})
    catalog = replace(catalog, record=replace(catalog.record, model=model))
    index = pq.read_table(class_output.path / "index.parquet")
    card = dataset_card(catalog, index, "preview.png")
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "mit"
    assert "model license (check its terms before you use the images): MIT" in card
    assert hub_license("Apache 2.0") == "apache-2.0" == hub_license("apache-2.0")
    assert hub_license("CreativeML OpenRAIL-M") == "creativeml-openrail-m"
    assert hub_license("Weights: Apache-2.0. Trained on data (CC BY 4.0)") == "other"


def test_prompt_card_counts_labels_and_unlabeled(prompt_output: Built) -> None:
    card = (prompt_output.path / "README.md").read_text()
    assert "| fox | 3 |" in card and "| frog | 3 |" in card and "| (unlabeled) | 2 |" in card
    assert "| prompts | 3 |" in card


# export ----------------------------------------------------------------------------------------

def test_export_imagefolder_writes_every_image_into_class_folders(class_output: Built,
                                                                  tmp_path: Path) -> None:
    dest = tmp_path / "folder"
    run = cli("export", str(class_output.path), "--format", "imagefolder", "--output", str(dest))
    assert run.returncode == 0, run.stderr
    assert "exported 21 images" in run.stdout
    assert sorted(p.name for p in dest.iterdir()) == ["00_a", "01_b", "02_c", "classes.json"]
    stored = image_bytes(class_output.path)
    plan = Catalog.open(str(class_output.path)).plan
    for label, name in enumerate(LABELS):
        files = sorted((dest / f"{label:02d}_{name}").iterdir())
        ids = [sid for sid in range(21) if plan.sample(sid).label == label]
        assert [f.name for f in files] == [f"{sid:09d}.png" for sid in ids]
        assert all(f.read_bytes() == stored[int(f.stem)] for f in files)
    again = cli("export", str(class_output.path), "--format", "imagefolder", "--output", str(dest))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_export_imagefolder_of_a_prompt_job_puts_unlabeled_images_apart(prompt_output: Built,
                                                                        tmp_path: Path) -> None:
    from synthgen.output.export import export

    done = export(str(prompt_output.path), "imagefolder", str(tmp_path / "x"))
    assert done.counts == {"00_fox": 3, "01_frog": 3, "unlabeled": 2}
    assert sorted(p.name for p in (tmp_path / "x/unlabeled").iterdir()) == ["000000003.png", "000000004.png"]


def test_export_webdataset_has_image_json_and_class_per_sample(class_output: Built, prompt_output: Built,
                                                              tmp_path: Path) -> None:
    from synthgen.output.export import export

    done = export(str(class_output.path), "webdataset", str(tmp_path / "wds"))
    assert done.total == 21 and len(done.counts) == 5
    with tarfile.open(tmp_path / "wds/shard-00001.tar") as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("000000007.json").read())
        cls = tar.extractfile("000000007.cls").read()
        png = tar.extractfile("000000007.png").read()
    assert names[:3] == ["000000005.png", "000000005.json", "000000005.cls"] and len(names) == 15
    label = Catalog.open(str(class_output.path)).plan.sample(7).label
    assert meta["label_name"] == LABELS[label] and meta["sample_id"] == 7 and "image" not in meta
    assert cls == str(label).encode() and png == image_bytes(class_output.path)[7]
    export(str(prompt_output.path), "webdataset", str(tmp_path / "pwds"))
    with tarfile.open(tmp_path / "pwds/shard-00001.tar") as tar:  # samples 3 (whale), 4 (whale), 5 (frog)
        assert tar.getnames() == ["000000003.png", "000000003.json", "000000004.png", "000000004.json",
                                  "000000005.png", "000000005.json", "000000005.cls"]


def test_export_and_preview_from_s3(class_output: Built, s3: S3, tmp_path: Path) -> None:
    s3.fs.put(str(class_output.path), f"{BUCKET}/digits", recursive=True)
    uri = f"s3://{BUCKET}/digits"
    run = cli("export", uri, "--format", "imagefolder", "--output", str(tmp_path / "x"), env=s3.env)
    assert run.returncode == 0, run.stderr
    folders = {p.name: len(list(p.iterdir())) for p in (tmp_path / "x").iterdir() if p.is_dir()}
    assert folders == {f"{i:02d}_{name}": 7 for i, name in enumerate(LABELS)}
    from synthgen.output.preview import write_preview

    write_preview(uri, str(tmp_path / "grid.png"))
    assert (tmp_path / "grid.png").read_bytes() == (class_output.path / "preview.png").read_bytes()


# show ------------------------------------------------------------------------------------------

def test_show_prints_counts_shards_throughput_and_provenance(class_output: Built) -> None:
    run = cli("show", str(class_output.path))
    assert run.returncode == 0, run.stderr
    text = run.stdout
    assert "tiny (complete)" in text and "21 of 21" in text and "5 of 5 committed" in text
    for name in LABELS:
        assert f"  {name}      7          7" in text
    assert "time per shard" in text and "img/s per worker" in text
    assert "ddim, 4 steps, guidance 2.0" in text and "job seed 0" in text
    assert "torch" in text and "diffusers" in text and "sha256:" in text


def test_show_on_an_incomplete_output_with_a_failure(class_output: Built, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from synthgen.output.show import show
    from synthgen.storage.store import Store

    copy = tmp_path / "out"
    shutil.copytree(class_output.path, copy)
    (copy / "_commits/shard-00004.json").unlink()
    (copy / "_SUCCESS").unlink()
    (copy / "_failed").mkdir()
    (copy / "_failed/shard-00004.json").write_text(json.dumps(
        {"shard": 4, "error": "RuntimeError: boom", "attempts": 3}))
    lines: list[str] = []
    show(Store(str(copy)), lines.append, terminal=False)
    text = "\n".join(lines)
    assert "tiny (incomplete)" in text and "20 of 21" in text and "4 of 5 committed" in text
    assert "Failed shards" in text and "RuntimeError: boom" in text
    lost = LABELS[Catalog.open(str(copy)).plan.sample(20).label]  # shard 4 holds sample 20 alone
    assert f"  {lost}      6          7" in text
    show(Store(str(copy)), terminal=True)
    rich = capsys.readouterr().out
    assert "Images per class" in rich and "│" in rich and "RuntimeError: boom" in rich


def test_show_on_a_prompt_job(unlabeled_output: Built) -> None:
    from synthgen.output.show import plain, sections
    from synthgen.storage.store import Store

    text = "\n".join(plain(s) for s in sections(Store(str(unlabeled_output.path))))
    assert "prompts        25" in text and "(unlabeled)  25" in text


# run log and progress --------------------------------------------------------------------------

def test_run_log_is_kept_beside_the_output_without_secrets(class_output: Built) -> None:
    logs = list((class_output.path / "_logs").iterdir())
    assert len(logs) == 1 and logs[0].name.startswith("run-") and logs[0].suffix == ".log"
    text = logs[0].read_text()
    assert "run ended" in text and "--per-worker" in text and "password=***" in text
    assert "5 shards on 1 actors" in text and "per worker: worker 0" in text
    for f in class_output.path.rglob("*"):
        if f.is_file():
            assert SECRET_VALUE.encode() not in f.read_bytes(), f


def test_run_prints_progress_with_failures_and_per_worker_rates(class_output: Built) -> None:
    stderr = class_output.run.stderr
    assert "images 21/21 (100%)" in stderr and "shards 5/5" in stderr and "failed attempts 0" in stderr
    assert "per worker: worker 0" in stderr and "img/s (5 shards)" in stderr
    assert SECRET_VALUE not in stderr + class_output.run.stdout


def test_progress_counts_failed_attempts_and_lost_shards(caplog: pytest.LogCaptureFixture) -> None:
    from synthgen.engine.progress import Progress

    with caplog.at_level(logging.INFO, logger="synthgen"), \
            Progress(total=10, done=0, shards_total=2, shards_done=0) as progress:
        progress.retried(0, "RuntimeError: x")
        progress.retried(1, "RuntimeError: y")
        progress.failed(1)
    assert "failed attempts 3, shards given up 1" in caplog.text


def test_redactor_removes_secrets_from_log_lines() -> None:
    from synthgen.storage.redact import text_redactor

    redact = text_redactor({"MY_SERVICE_TOKEN": "tok-123456789", "HOME": "/root"})
    line = redact("tok-123456789 s3://AKIA:pw@host/x --set output.storage_options.secret=abc "
                  "{'aws_secret_access_key': 'xyz'} HOME=/root")
    for secret in ("tok-123456789", "AKIA", "pw@", "abc", "xyz"):
        assert secret not in line, line
    assert "HOME=/root" in line
