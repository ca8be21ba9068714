"""Export checks every name its layout needs before anything is written, and writes into a
staging folder beside the target that is renamed at the end: a failure leaves nothing, and a
target that holds anything is never touched (through the CLI, jobs on local disk)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synthgen.output.catalog import Catalog
from tests.conftest import ROOT, tiny_spec
from tests.helpers.dataset_outputs import run_in_process

LONG = "a very long class name " * 12  # 276 bytes: more than a file name may hold


def export(uri: str, dest: Path, *extra: str, fmt: str = "imagefolder") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthgen.cli", "export", uri, "--format", fmt,
                           "--output", str(dest), *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def long_named(tmp_path: Path, class_model: Path, one_torch_thread: None) -> Any:
    """A finished job whose second class has a name longer than a file name may be."""
    return run_in_process(tiny_spec(class_model, tmp_path / "job", classes__count=4, output__shard_size=4,
                                    classes__names=["a", LONG, "c"], classes__label_mapping="position",
                                    sampler__steps=2))


@pytest.mark.parametrize("names", ["prefixed", "plain"])
def test_a_class_name_too_long_for_a_folder_is_refused_before_anything_is_written(
        long_named: Any, tmp_path: Path, names: str) -> None:
    done = export(long_named.store.uri, tmp_path / "exported", "--names", names)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "class name" in line and "255" in line and "webdataset" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job"]  # no target, no staging folder
    webdataset = export(long_named.store.uri, tmp_path / "wds", fmt="webdataset")
    assert webdataset.returncode == 0, webdataset.stderr  # its keys hold no class name


def test_an_export_that_fails_half_way_leaves_nothing(long_named: Any, tmp_path: Path) -> None:
    catalog = Catalog.read(long_named.store)
    Path(long_named.store.path(catalog.shards[-1].file)).write_bytes(b"not parquet")  # unreadable
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "new", tmp_path / "empty"):
        failed = export(long_named.store.uri, target, fmt="webdataset")
        assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert list((tmp_path / "empty").iterdir()) == []  # the existing (empty) target as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "job"]  # no target, no staging


def test_a_target_that_holds_anything_is_never_touched(long_named: Any, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    done = export(long_named.store.uri, target, fmt="webdataset")
    assert done.returncode == 2 and "not empty" in done.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_an_empty_target_folder_receives_the_export(long_named: Any, tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    done = export(long_named.store.uri, target, fmt="webdataset")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == [f"shard-{i:05d}.tar" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "job"]
