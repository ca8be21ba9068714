"""Spec loading, overrides and manifests; every bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.errors import UserError
from synthgen.spec.load import load_spec, validate_spec
from synthgen.spec.manifest import resolve_manifest
from tests.conftest import ROOT, tiny_spec, write_spec


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_digits_spec_defaults_and_overrides() -> None:
    spec = load_spec(ROOT / "pipelines/digits.yaml",
                     ("classes.count=200", "seed=7", "output.shard_size=25", "sampler.scheduler=ddpm"),
                     output="/tmp/x")
    assert (spec.classes.count, spec.seed, spec.output.shard_size) == (200, 7, 25)
    assert spec.sampler.scheduler == "ddpm"
    assert spec.output.uri == "/tmp/x"
    assert spec.classes.names == [str(d) for d in range(10)]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "yaml", "parquet"])
def test_class_manifest_files(tmp_path: Path, suffix: str) -> None:
    rows = [{"name": "cat", "count": 3, "model_label": 2}, {"name": "dog"}]
    path = tmp_path / f"classes.{suffix}"
    if suffix == "csv":
        path.write_text("name,count,model_label\ncat,3,2\ndog,,\n")
    elif suffix == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif suffix == "yaml":
        path.write_text(yaml.safe_dump(rows))
    else:
        pq.write_table(pa.Table.from_pylist([{**r, "count": r.get("count"),
                                              "model_label": r.get("model_label")} for r in rows]), path)
    spec = validate_spec({"classes": {"source": str(path), "count": 5}})
    manifest = resolve_manifest(spec)
    assert manifest.class_names == ("cat", "dog")
    assert [(e.label, e.count, e.model_label) for e in manifest.entries] == [(0, 3, 2), (1, 5, None)]


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "txt", "parquet"])
def test_prompt_manifest_files(tmp_path: Path, suffix: str) -> None:
    rows = [{"prompt": "a red cat", "label": "cat", "count": 2},
            {"prompt": "a dog", "label": "dog", "negative_prompt": "blurry"}]
    path = tmp_path / f"prompts.{suffix}"
    if suffix == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif suffix == "csv":
        path.write_text("prompt,label,count,negative_prompt\na red cat,cat,2,\na dog,dog,,blurry\n")
    elif suffix == "txt":
        path.write_text("a red cat\n\na dog\n")
    else:
        pq.write_table(pa.Table.from_pylist([{**rows[0], "negative_prompt": None},
                                             {**rows[1], "count": None}]), path)
    manifest = resolve_manifest(validate_spec({"prompts": {"source": str(path), "count": 4}}))
    prompts = [(e.prompts[0], e.count) for e in manifest.entries]
    if suffix == "txt":
        assert prompts == [("a red cat", 4), ("a dog", 4)]
        assert manifest.class_names == ()
        assert {e.label for e in manifest.entries} == {-1}
    else:
        assert prompts == [("a red cat", 2), ("a dog", 4)]
        assert manifest.class_names == ("cat", "dog")
        assert manifest.entries[1].negative_prompt == "blurry"


def test_inline_prompts_and_templates() -> None:
    spec = validate_spec({"prompts": ["a cat", {"prompt": "a dog", "count": 3}]})
    assert [e.count for e in resolve_manifest(spec).entries] == [1, 3]
    spec = validate_spec({"classes": {"names": ["cat"], "templates": ["a {name}", "photo of {name}"]}})
    entry = resolve_manifest(spec).entries[0]
    assert entry.prompts == ("a cat", "photo of cat")
    assert entry.templates == ("a {name}", "photo of {name}")


def test_relative_manifest_path_is_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "names.csv").write_text("name\nx\ny\n")
    spec_path = write_spec(tmp_path / "sub" / "s.yaml", {"classes": {"source": "names.csv"}})
    assert resolve_manifest(load_spec(spec_path)).class_names == ("x", "y")
    spec_path = write_spec(tmp_path / "sub" / "s.yaml", {"classes": {"source": "names.xls"}})
    with pytest.raises(UserError, match="unknown file type"):
        resolve_manifest(load_spec(spec_path))


def test_a_relative_model_path_is_the_spec_folders_and_shown_resolved(
        tmp_path: Path, class_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "specs").mkdir()
    shutil.copytree(class_model, tmp_path / "models" / "m")  # beside the working directory only
    monkeypatch.chdir(tmp_path)
    for given in ("./models/m", "../specs/models/m"):
        spec = write_spec(tmp_path / "specs" / "s.yaml", tiny_spec(class_model, tmp_path / "out",
                                                                   model__source=given))
        refused = run_cli("plan", str(spec))
        assert refused.exit_code == 2
        assert f"model.source: '{tmp_path / 'specs' / 'models' / 'm'}' is not valid: no such folder" \
            in refused.stderr
    shutil.copytree(class_model, tmp_path / "specs" / "models" / "m")
    spec = write_spec(tmp_path / "specs" / "s.yaml", tiny_spec(Path("models/m"), tmp_path / "out"))
    planned = run_cli("plan", str(spec))
    assert planned.exit_code == 0, planned.output
    assert f"model: {tmp_path / 'specs' / 'models' / 'm'} (" in planned.stdout
    shutil.rmtree(tmp_path / "specs" / "models")  # now `models/m` could only be a hub id
    unknown = run_cli("plan", str(spec))
    assert "model: models/m (not cached here" in unknown.stdout  # not the working directory's


BAD_INPUTS = {
    "malformed yaml": ("name: [unclosed\n", "malformed YAML at line 2, column 1: expected ',' or ']'"),
    "tab indentation": ("name: x\nsampler:\n\tsteps: 3\n", "spec.yaml' is not valid: a tab at line 3, "
                        "column 1: YAML does not allow tabs for indentation; indent with spaces"),
    "unknown field": ({"sampler": {"stepz": 3}}, "sampler.stepz"),
    "unknown scheduler": ({"sampler": {"scheduler": "magic"}}, "ddim"),
    "missing model": ({"model": {"source": "/nonexistent/model"}}, "model.source"),
    "zero count": ({"classes": {"count": 0}}, "classes.count"),
    "negative count": ({"classes": {"count": -3}}, "classes.count"),
    "empty manifest": ({"classes": {"names": []}}, "empty"),
    "bad override": ("--set", "--set"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, class_model: Path,
                                                      case: str) -> None:
    change, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    spec = tiny_spec(class_model, out)
    path = tmp_path / "spec.yaml"
    extra: list[str] = []
    if isinstance(change, str) and change == "--set":
        extra = ["--set", "sampler.steps"]
        write_spec(path, spec)
    elif isinstance(change, str):
        path.write_text(change)
    else:
        for section, values in change.items():
            spec[section] = {**spec.get(section, {}), **values}
        write_spec(path, spec)
    result = run_cli("run", str(path), *extra)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not out.exists()


def test_unwritable_output(tmp_path: Path, class_model: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, blocker / "out"))
    result = run_cli("run", str(path))
    assert result.exit_code == 2
    assert "output.uri" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "not a folder"


def test_plan_prints_counts_without_writing(tmp_path: Path, class_model: Path) -> None:
    path = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, tmp_path / "out"))
    result = run_cli("plan", str(path), "--json", "--set", "classes.count=11")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["samples"] == 33 and plan["shards"] == 7
    assert plan["per_class"] == {"a": 11, "b": 11, "c": 11}
    assert not (tmp_path / "out").exists()


def test_help_shows_examples() -> None:
    for command in ("plan", "run", "resume", "status", "verify"):
        result = run_cli(command, "--help")
        assert result.exit_code == 0 and "Example" in result.output, command
