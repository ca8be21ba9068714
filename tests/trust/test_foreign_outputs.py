"""Never touch what synthgen did not write; paths read from data stay inside their root.

Through the real CLI: `run` into `.`, `''`, `file://` and a bucket prefix that hold the user's
files is refused with exit 2 and one line, and nothing changes. A remote model whose listing
holds `..` is refused before anything is copied.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.errors import UserError
from synthgen.models.sources import resolve_source
from synthgen.spec.job_spec import ModelSpec
from synthgen.storage.layout import confine, relative_to
from synthgen.storage.store import Store
from tests.conftest import ROOT, tiny_spec, write_spec
from tests.helpers.s3server import BUCKET, S3
from tests.trust.conftest import put


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "synthgen.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def snapshot(store: Store) -> dict[str, bytes]:
    return {p: store.fs.cat_file(p) for p in store.fs.find(store.root)}


@pytest.mark.parametrize("output", [".", "", "file://", "file://.", "./"])
def test_run_into_a_project_folder_is_refused(tmp_path: Path, class_model: Path, output: str) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "README.md").write_text("my project")
    (project / "data" / "train.parquet").write_bytes(b"mine")
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, tmp_path / "unused"))
    before = snapshot(Store(str(project)))
    done = run_cli("run", str(spec), "--output", output, cwd=project)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: output.uri") and "Traceback" not in done.stderr
    assert ("README.md" in lines[0] and "data" in lines[0]) or "empty" in lines[0]
    assert snapshot(Store(str(project))) == before


def test_run_into_a_used_bucket_prefix_is_refused(s3: S3, tmp_path: Path, class_model: Path) -> None:
    store = Store(f"s3://{BUCKET}/proj")
    put(store, "notes.txt", b"mine")
    put(store, "data/shard-00000-00aa.parquet", b"looks like ours, is not")
    before = snapshot(store)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, f"s3://{BUCKET}/proj"))
    done = run_cli("run", str(spec), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "notes.txt" in done.stderr and "data" in done.stderr
    assert snapshot(store) == before


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "", "C:/x",
                                 "a\\..\\b", "s3://other/x", "a/\x00"])
def test_confine_refuses_paths_that_leave_their_root(bad: str) -> None:
    with pytest.raises(UserError, match="must stay inside"):
        confine(bad, "field")


def test_confine_keeps_plain_relative_paths() -> None:
    assert confine("unet/config.json") == "unet/config.json"
    assert relative_to("bucket/m", "bucket/m/unet/w.bin") == "unet/w.bin"
    with pytest.raises(UserError):
        relative_to("bucket/m", "bucket/mx/evil")


def test_remote_model_listing_with_dotdot_is_refused_and_copies_nothing(
        s3: S3, class_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SYNTHGEN_CACHE", str(cache))
    s3.fs.put(str(class_model), f"{BUCKET}/models/m", recursive=True)
    # A key that a listing returns verbatim: copied as is, it lands two folders above the cache.
    s3.fs.call_s3("put_object", Bucket=BUCKET, Key="models/m/../../../evil.json", Body=b"{}")
    listed = [p for p in s3.fs.find(f"{BUCKET}/models/m") if ".." in p]
    if not listed:
        pytest.skip("this S3 normalises `..` in keys: the attack cannot be staged")
    with pytest.raises(UserError, match="model.source"):
        resolve_source(ModelSpec(source=f"s3://{BUCKET}/models/m"), fetch="configs")
    assert not (tmp_path / "evil.json").exists()
    assert not list(cache.rglob("*.json"))


def test_local_listing_confinement_on_disk(tmp_path: Path) -> None:
    """The same helper on a local listing: a symlink-free path that climbs is refused."""
    root = str(tmp_path / "m")
    with pytest.raises(UserError, match="outside"):
        relative_to(root, str(tmp_path / "other" / "x"), "model.source")


def test_class_names_as_folders_are_confined() -> None:
    from synthgen.output.export import _safe

    assert _safe("../../etc", 0) == ".._.._etc"
    assert _safe("..", 3) == "class-3"
    assert _safe("a\\b", 1) == "a_b"
