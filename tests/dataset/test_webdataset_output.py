"""output.format: webdataset, end to end: jobs run by the real CLI on the session's Ray (local disk
and S3 over HTTP), read back by the real `webdataset` package, Hugging Face `datasets` and
synthgen's own readers; verify that passes and fails, a killed shard resumed bit for bit."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds

import synthgen
from synthgen.output.catalog import Catalog, read_markers
from synthgen.output.formats.webdataset import TarSample, read_samples, tar_bytes
from synthgen.output.readers import load_image
from synthgen.spec.plan import Plan
from synthgen.storage.store import Store
from tests.conftest import synthgen as cli
from tests.conftest import tiny_spec, write_spec
from tests.helpers.dataset_outputs import Built, committed_rows
from tests.helpers.faults import fault_plan
from tests.helpers.s3server import S3, assert_complete

TOTAL = 21  # tiny_spec: classes a, b, c x 7 images, shards of 5
NAMES = ["a", "b", "c"]


def wds_spec(model: Path, out: str | Path, **changes: object) -> dict:
    return tiny_spec(model, out, output__format="webdataset", **changes)


@pytest.fixture(scope="module")
def wds_output(tmp_path_factory: pytest.TempPathFactory, class_model: Path, ray_address: str) -> Path:
    root = tmp_path_factory.mktemp("wds-job")
    run = cli("run", str(write_spec(root / "spec.yaml", wds_spec(class_model, root / "out"))),
              address=ray_address)
    assert run.returncode == 0, run.stderr
    return root / "out"


def planned(out: Path) -> tuple[Plan, dict[int, int]]:
    """The job's plan and each planned sample's label: what the tars must hold."""
    plan = Catalog.open(str(out)).plan
    labels = {s.sample_id: s.label for i in range(plan.num_shards) for s in plan.samples(plan.shard(i))}
    return plan, labels


def markers(out: Path) -> dict[int, dict]:
    return {int(p.stem.split("-")[1]): json.loads(p.read_text())
            for p in sorted((out / "_commits").glob("shard-*.json"))}


def test_webdataset_package_reads_labels_and_sample_ids(wds_output: Path) -> None:
    plan, labels = planned(wds_output)
    urls = synthgen.data_files(str(wds_output))
    assert [Path(u).name for u in urls] == [Path(m["file"]).name for m in markers(wds_output).values()]
    assert all(u.endswith(".tar") for u in urls) and len(urls) == plan.num_shards == 5
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert [s["__key__"] for s in samples] == [f"{i:09d}" for i in range(TOTAL)]
    assert [s["json"]["sample_id"] for s in samples] == list(range(TOTAL))
    assert [s["cls"] for s in samples] == [labels[i] for i in range(TOTAL)]
    assert Counter(s["cls"] for s in samples) == {0: 7, 1: 7, 2: 7}
    assert all(s["json"]["label"] == s["cls"] and s["json"]["label_name"] == NAMES[s["cls"]] for s in samples)
    assert all(s["png"].size == (s["json"]["width"], s["json"]["height"]) for s in samples)
    # Each tar holds exactly its planned shard, in order.
    for url, (index, marker) in zip(urls, markers(wds_output).items(), strict=True):
        keys = [s["__key__"] for s in wds.WebDataset(url, shardshuffle=False)]
        assert keys == [f"{s.sample_id:09d}" for s in plan.samples(plan.shard(index))]
        assert marker["rows"] == len(keys)


def test_same_rows_as_the_parquet_job_of_the_same_spec(wds_output: Path, class_output: Built) -> None:
    """Only the format differs, so only job_id differs: images bit for bit, every other column."""
    parquet = {r["sample_id"]: r for r in committed_rows(class_output.path)}
    with_tars = {}
    for marker in markers(wds_output).values():
        with open(wds_output / marker["file"], "rb") as f:
            with_tars.update({s.meta["sample_id"]: s for s in read_samples(f)})
    assert sorted(with_tars) == sorted(parquet) == list(range(TOTAL))
    for sid, sample in with_tars.items():
        row = parquet[sid]
        assert sample.image == row["image"]["bytes"] and sample.image_ext == "png"
        assert {k: v for k, v in sample.meta.items() if k != "job_id"} == \
            {k: v for k, v in row.items() if k not in ("image", "job_id")}
    assert with_tars[0].meta["job_id"] != parquet[0]["job_id"]  # another job: another output


def test_index_card_and_hf_datasets(wds_output: Path) -> None:
    import datasets

    _, labels = planned(wds_output)
    index = pq.read_table(wds_output / "index.parquet")
    assert sorted(index.column("sample_id").to_pylist()) == list(range(TOTAL))
    assert "image" not in index.column_names
    assert all(f.endswith(".tar") for f in index.column("file").to_pylist())
    card = (wds_output / "README.md").read_text()
    assert "5 WebDataset tar files" in card and "webdataset.WebDataset(synthgen.data_files(URI))" in card
    ds = datasets.load_dataset(str(wds_output), split="train")
    assert len(ds) == TOTAL
    assert ds.features["cls"].names == NAMES and isinstance(ds.features["png"], datasets.Image)
    rows = sorted(ds, key=lambda r: r["json"]["sample_id"])
    assert [r["cls"] for r in rows] == [labels[i] for i in range(TOTAL)]
    assert rows[3]["png"].size == (rows[3]["json"]["width"], rows[3]["json"]["height"])


def test_open_dataset_reads_both_ways(wds_output: Path) -> None:
    _, labels = planned(wds_output)
    urls = synthgen.data_files(str(wds_output))
    stored = {int(s["__key__"]): s["png"] for s in wds.WebDataset(urls, shardshuffle=False)}
    mapped = synthgen.open_dataset(str(wds_output), columns=["sample_id", "label_name"])
    assert len(mapped) == TOTAL
    for i in (13, 0, 20, 7):  # out of order: each a range read of its own members
        item = mapped[i]
        assert (item["sample_id"], item["label"], item["label_name"]) == (i, labels[i], NAMES[labels[i]])
        assert item["image"].tobytes() == load_image(stored[i]).tobytes()
    stream = synthgen.open_dataset(str(wds_output), streaming=True, shuffle=True, shuffle_buffer=4,
                                   columns=["sample_id"])
    seen = [item["sample_id"] for item in stream]
    assert sorted(seen) == list(range(TOTAL)) and seen != sorted(seen)


def test_verify_fails_on_a_corrupted_tar_and_repair_regenerates_it(wds_output: Path, tmp_path: Path,
                                                                    ray_address: str) -> None:
    assert cli("verify", str(wds_output)).returncode == 0
    out = tmp_path / "copy"
    shutil.copytree(wds_output, out)
    tar = out / markers(out)[2]["file"]
    data = tar.read_bytes()
    tar.write_bytes(data[:700] + bytes([data[700] ^ 0xFF]) + data[701:])
    result = cli("verify", str(out))
    assert result.returncode == 1
    assert "shard 2" in result.stderr and "sha256 does not match" in result.stderr
    # A tar short of a sample under a marker rewritten to match it: the row check still fails.
    with open(wds_output / markers(out)[3]["file"], "rb") as f:
        fewer = tar_bytes(list(read_samples(f))[:-1])
    marker_file = out / "_commits/shard-00003.json"
    marker = json.loads(marker_file.read_text())
    (out / marker["file"]).write_bytes(fewer)
    marker_file.write_text(json.dumps({**marker, "bytes": len(fewer),
                                       "sha256": hashlib.sha256(fewer).hexdigest()}))
    result = cli("verify", str(out))
    assert "shard 3" in result.stderr and "rows 4 do not match" in result.stderr
    # resume --repair regenerates exactly those two, to the same bytes.
    repaired = cli("resume", str(out), "--repair", address=ray_address)
    assert repaired.returncode == 0, repaired.stderr
    assert cli("verify", str(out)).returncode == 0
    reference, after = markers(wds_output), markers(out)
    assert {i for i in after if after[i]["file"] != reference[i]["file"]} == {2, 3}
    assert {i: m["sha256"] for i, m in after.items()} == {i: m["sha256"] for i, m in reference.items()}


def test_export_preview_and_status_of_a_webdataset_output(wds_output: Path, tmp_path: Path) -> None:
    folder = cli("export", str(wds_output), "--format", "imagefolder", "--output", str(tmp_path / "folder"))
    assert folder.returncode == 0, folder.stderr
    folders = [f"{i:02d}_{n}" for i, n in enumerate(NAMES)]  # ImageFolder names in label order
    assert sorted(len(list((tmp_path / "folder" / n).iterdir())) for n in folders) == [7, 7, 7]
    tars = cli("export", str(wds_output), "--format", "webdataset", "--output", str(tmp_path / "tars"))
    assert tars.returncode == 0, tars.stderr
    exported = sorted(str(p) for p in (tmp_path / "tars").glob("*.tar"))
    assert [s["__key__"] for s in wds.WebDataset(exported, shardshuffle=False)] == \
        [f"{i:09d}" for i in range(TOTAL)]
    assert cli("preview", str(wds_output), "--output", str(tmp_path / "p.png")).returncode == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status = json.loads(cli("status", str(wds_output), "--json").stdout)
    assert status["format"] == "webdataset" and status["complete"] and status["samples_committed"] == TOTAL


def test_run_on_s3_commits_each_shard_once(ray_address: str, s3: S3, class_model: Path,
                                           tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "job.yaml", wds_spec(class_model, "s3://bucket/w"))
    run = cli("run", str(spec), address=ray_address, env=s3.env)
    assert run.returncode == 0, run.stderr
    store = Store("s3://bucket/w")
    assert_complete(store, TOTAL)  # verify passes, each sample once, only the markers' tars in data/
    found = read_markers(store)
    assert all(m.attempt_no == 0 and m.committed_by is None and m.file.endswith(".tar")
               for m in found.values())  # each shard committed once, by its worker
    assert s3.pending_uploads() == []
    assert cli("verify", "s3://bucket/w", env=s3.env).returncode == 0
    stream = synthgen.open_dataset("s3://bucket/w", streaming=True, columns=["sample_id"])
    assert sorted(item["sample_id"] for item in stream) == list(range(TOTAL))


@pytest.mark.slow
def test_a_killed_shard_resumes_to_the_same_bytes(ray_address: str, class_model: Path, tmp_path: Path,
                                                  wds_output: Path) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "job.yaml", wds_spec(class_model, out, compute__max_retries=1))
    with fault_plan("crash_after_upload:1:*"):  # shard 1's tar is put, then its worker dies
        failed = cli("run", str(spec), address=ray_address)
    assert failed.returncode == 1 and "shard 1" in failed.stderr
    assert sorted(markers(out)) == [0, 2, 3, 4]
    named = {Path(m["file"]).name for m in markers(out).values()}
    orphans = {p.name for p in (out / "data").iterdir()} - named
    assert len(orphans) == 1 and orphans.pop().startswith("shard-00001-")
    (out / "data/notes.txt").write_text("mine")  # not synthgen's: must survive the orphan sweep
    resumed = cli("resume", str(out), address=ray_address)
    assert resumed.returncode == 0, resumed.stderr
    checked = cli("verify", str(out))  # every shard verifies; the foreign file is named, not touched
    assert checked.stderr == "data/notes.txt: not a file synthgen writes here\n", checked.stderr
    reference, again = markers(wds_output), markers(out)
    assert {i: m["sha256"] for i, m in again.items()} == {i: m["sha256"] for i, m in reference.items()}
    assert sorted(p.name for p in (out / "data").iterdir()) == \
        sorted(["notes.txt", *(Path(m["file"]).name for m in again.values())])


def test_tar_samples_round_trip() -> None:
    row = {"image": {"bytes": b"\x89PNG...", "path": "000000042.webp"}, "label": -1, "sample_id": 42,
           "label_name": None, "guidance_scale": 2.5}
    sample = TarSample.from_row(row)
    data = tar_bytes([sample, sample])
    assert data == tar_bytes([TarSample.from_row(row)] * 2)  # the same rows, the same bytes
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names[:2] == ["000000042.webp", "000000042.json"]  # no .cls for an unlabeled row
    back = next(read_samples(io.BytesIO(data)))
    assert back.to_row() == row
