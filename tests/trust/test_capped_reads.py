"""Every read of a user-given or remote file stops at a cap named in the error (exit 2), however
long the server's body: an HTTP server on 127.0.0.1 serves bodies that never end."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthgen.errors import UserError
from synthgen.models.configs import read_json
from synthgen.models.sources import resolve_source
from synthgen.spec.job_spec import ModelSpec
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from synthgen.storage.filesystem import CONFIG_CAP
from tests.conftest import synthgen, tiny_spec, write_spec
from tests.helpers.endless_http import endless_server


def test_a_manifest_whose_body_never_ends_is_refused_at_its_cap(tmp_path: Path, class_model: Path) -> None:
    with endless_server() as base:
        spec = tiny_spec(class_model, tmp_path / "out")
        spec["classes"] = {"source": f"{base}/names.txt", "count": 1}
        done = synthgen("plan", str(write_spec(tmp_path / "job.yaml", spec)), timeout=60)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "classes.source" in line and "256 MiB" in line and "names.txt" in line
    assert not (tmp_path / "out").exists()


def test_an_attribute_file_whose_body_never_ends_is_refused(tmp_path: Path) -> None:
    with endless_server() as base, pytest.raises(UserError, match="cap of 256 MiB") as caught:
        Plan.build(validate_spec({"classes": {"names": ["a"], "attributes": f"{base}/axes.yaml"}}))
    assert caught.value.field == "classes.attributes"


def test_a_remote_model_config_cannot_fill_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGEN_CACHE", str(tmp_path / "cache"))
    with endless_server({"/model": ["/model/model_index.json"]}) as base, \
            pytest.raises(UserError, match="cap of 16 MiB") as caught:
        resolve_source(ModelSpec(source=f"{base}/model/"), "configs")
    assert caught.value.field == "model.source" and "model_index.json" in str(caught.value.value)
    copied = [f for f in (tmp_path / "cache").rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in copied) < 1 << 20  # the lock file, no partial config


def test_a_huge_local_config_is_refused_not_read_whole(tmp_path: Path) -> None:
    with open(tmp_path / "model_index.json", "wb") as f:
        f.truncate(CONFIG_CAP * 64)  # sparse: 1 GiB on paper
    with pytest.raises(UserError, match="cap of 16 MiB") as caught:
        read_json(tmp_path / "model_index.json")
    assert caught.value.field == "model.source"
