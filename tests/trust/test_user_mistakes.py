"""Every user mistake exits 2 with one line, no traceback, nothing written (through the CLI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthgen.spec.manifest_files import read_rows
from tests.conftest import ROOT, tiny_spec


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthgen.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def model_copy(class_model: Path, tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(class_model, folder)
    edit(folder)
    return folder


SPEC_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "typo in a list item": (lambda s: s["classes"].update(names=None, entries=[{"name": "a", "cnt": 2}]),
                            ("classes.entries[0].cnt", "count")),
    "bool for steps": (lambda s: s["sampler"].update(steps=True), ("sampler.steps", "boolean")),
    "bool for count": (lambda s: s["classes"].update(count=False), ("classes.count", "boolean")),
    "infinite guidance": (lambda s: s["sampler"].update(guidance_scale=float("inf")),
                          ("sampler.guidance_scale", "finite")),
    "nan guidance": (lambda s: s["sampler"].update(guidance_scale=float("nan")),
                     ("sampler.guidance_scale", "finite")),
    "unknown scheme": (lambda s: s["output"].update(uri="foo://bucket/x"), ("foo://", "scheme")),
    "missing package": (lambda s: s["output"].update(uri="gs://bucket/x"), ("pip install gcsfs",)),
    "empty output": (lambda s: s["output"].update(uri=""), ("output.uri", "empty")),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_spec_mistakes(case: str, tmp_path: Path, class_model: Path) -> None:
    spec = tiny_spec(class_model, tmp_path / "out")
    edit, words = SPEC_CASES[case]
    edit(spec)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    refused(cli("run", str(path)), *words)
    assert not (tmp_path / "out").exists()


def test_spec_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes("name: caf\u00e9\nclasses: {names: [a]}\n".encode("latin-1"))
    refused(cli("plan", str(path)), "spec", "UTF-8")


def test_manifest_with_a_bom_reads_as_without(tmp_path: Path) -> None:
    for ext, body in (("csv", "name\na\nb\n"), ("txt", "a\nb\n"), ("jsonl", '{"name": "a"}\n{"name": "b"}\n'),
                      ("yaml", "[a, b]\n"), ("json", '[{"name": "a"}, {"name": "b"}]')):
        path = tmp_path / f"classes.{ext}"
        path.write_bytes(b"\xef\xbb\xbf" + body.encode())
        assert [r["name"] for r in read_rows(str(path), {}, "classes.source", "name")] == ["a", "b"]


def test_manifest_counts_refuse_bools_and_infinities(tmp_path: Path, class_model: Path) -> None:
    for count in ("true", "inf", "nan", "1e400"):
        (tmp_path / "classes.csv").write_text(f"name,count\na,{count}\n")
        spec = tiny_spec(class_model, tmp_path / "out")
        spec["classes"] = {"source": str(tmp_path / "classes.csv")}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        refused(cli("plan", str(tmp_path / "spec.yaml")), "classes[0].count")


MODEL_CASES: dict[str, Callable[[Path], None]] = {
    "config.json not JSON": lambda m: (m / "unet" / "config.json").write_text("{not json"),
    "config.json a list": lambda m: (m / "unet" / "config.json").write_text("[1, 2]"),
    "model_index.json not JSON": lambda m: (m / "model_index.json").write_bytes(b"\xff\xfe{"),
    "model_index.json class a number": lambda m: (m / "model_index.json").write_text('{"_class_name": 3}'),
    "sample_size a string": lambda m: _edit_json(m / "unet" / "config.json", sample_size="big"),
    "id2label a list": lambda m: _edit_json(m / "synthgen.json", id2label=["a", "b"]),
    "id2label keys not ids": lambda m: _edit_json(m / "synthgen.json", id2label={"x": "a"}),
}


def _edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**data, **changes}))


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_broken_model_configs(case: str, tmp_path: Path, class_model: Path) -> None:
    if not (class_model / "unet").is_dir():
        pytest.skip("the tiny model has no unet/ folder")
    model = model_copy(class_model, tmp_path, MODEL_CASES[case])
    spec = tiny_spec(model, tmp_path / "out")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    refused(cli("run", str(tmp_path / "spec.yaml")), "model.source")
    assert not (tmp_path / "out").exists()


def test_corrupt_job_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "job.json").write_text('{"job_id": "x"')
    refused(cli("status", str(tmp_path / "out")), "job.json", "corrupt")
