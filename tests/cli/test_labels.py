"""Labels cannot be silently wrong: plan shows each entry's model class and where it came from,
and a name the model does not know is refused unless mapping by position is asked for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DIGITS = str(ROOT / "pipelines/digits.yaml")


def plan(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthgen.cli", "plan", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_names_the_builtin_model_does_not_know_are_refused_with_the_valid_names(tmp_path: Path) -> None:
    result = plan(DIGITS, "--set", "classes.names=[cat,dog]", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "classes[0].name: 'cat'" in result.stderr and "'0', '1', '2'" in result.stderr
    assert "classes.label_mapping: position" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_mapping_by_position_is_asked_for_and_shown() -> None:
    position = ("--set", "classes.names=[cat,dog]", "--set", "classes.label_mapping=position")
    result = plan(DIGITS, *position, "--json")
    assert result.returncode == 0, result.stderr
    labels = json.loads(result.stdout)["labels"]
    assert labels == [{"label": 0, "name": "cat", "model_class": 0, "from": "position"},
                      {"label": 1, "name": "dog", "model_class": 1, "from": "position"}]
    text = plan(DIGITS, *position).stdout
    assert "cat" in text and "0 (position)" in text and "1 (position)" in text


def test_plan_shows_id2label_and_model_label_sources(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("classes:\n  entries: [{name: '7'}, {name: seven, model_label: 7}]\n")
    labels = json.loads(plan(str(spec), "--json").stdout)["labels"]
    assert [(r["model_class"], r["from"]) for r in labels] == [(7, "id2label"), (7, "model_label")]


def test_the_imagenet100_first_shard_holds_every_class_in_plan_json() -> None:
    summary = json.loads(plan(str(ROOT / "pipelines/imagenet100-dit.yaml"), "--json").stdout)
    assert summary["order"] == "interleaved" and summary["first_shard"]["split"] == "train"
    per_class = summary["first_shard"]["per_class"]
    assert len(per_class) == 100 and sum(per_class.values()) == summary["shard_size"]
