"""The job spec's JSON Schema (`synthgen schema`, published as docs/reference/job-spec.schema.json):
every shipped spec passes the third-party `jsonschema` validator, the forms synthgen reads pass
it too, and an unknown key anywhere is refused by it as it is by synthgen."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from synthgen.errors import UserError
from synthgen.spec.load import validate_spec
from synthgen.spec.schema import job_schema
from tests.cli.test_commands import loaded_by
from tests.conftest import ROOT, synthgen

PUBLISHED = ROOT / "docs" / "reference" / "job-spec.schema.json"
SHIPPED = sorted((ROOT / "pipelines").glob("*.yaml"))
CLASSES = {"classes": {"names": ["a", "b"]}}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(PUBLISHED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_published_schema_is_what_synthgen_schema_prints() -> None:
    result = synthgen("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == PUBLISHED.read_text(), \
        "regenerate it: synthgen schema > docs/reference/job-spec.schema.json"
    assert json.loads(result.stdout) == job_schema()


def test_synthgen_schema_loads_no_torch_ray_or_other_commands() -> None:
    assert loaded_by("schema") == "[]"


def test_the_schema_cites_no_url_of_its_own() -> None:
    """No `$id`: the project publishes no such URL; only the dialect's standard identifier."""
    urls = {word for value in walk(job_schema()) if isinstance(value, str)
            for word in re.findall(r"https?://\S+", value)}
    assert urls == {"https://json-schema.org/draft/2020-12/schema"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_spec_validates_and_names_the_schema(
        path: Path, validator: jsonschema.Draft202012Validator) -> None:
    validator.validate(yaml.safe_load(path.read_text()))
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../docs/reference/job-spec.schema.json"
    assert (path.parent / first.split("$schema=")[1]).resolve() == PUBLISHED


def test_every_section_is_closed() -> None:
    """Each object with named fields refuses others (pydantic's extra=forbid, on every model)."""
    objects = [node for node in walk(job_schema()) if isinstance(node, dict) and "properties" in node]
    assert len(objects) >= 14
    assert [node.get("title") for node in objects if node.get("additionalProperties") is not False] == []


# An unknown key in every section, and in every form a section takes.
TYPOS = {
    "top level": {**CLASSES, "sead": 1},
    "model": {**CLASSES, "model": {"sorce": "builtin:digits"}},
    "sampler": {**CLASSES, "sampler": {"stepz": 10}},
    "sampler choice": {**CLASSES, "sampler": {"steps": {"choice": [10, 20], "weights": [1, 2]}}},
    "sampler uniform": {**CLASSES, "sampler": {"guidance_scale": {"uniform": [1, 2], "seed": 3}}},
    "classes": {"classes": {"names": ["a"], "template": ["a {name}"]}},
    "class entry": {"classes": {"entries": [{"name": "a", "label": 3}]}},
    "negative choice": {"classes": {"names": ["a"], "negative_prompt": {"choice": ["x"], "p": 1}}},
    "captions": {"classes": {"names": ["a"], "captions": {"model": "m", "per_class": 1, "temp": 1}}},
    "prompts": {"prompts": {"items": ["a cat"], "cnt": 2}},
    "prompt item": {"prompts": {"items": [{"prompt": "a cat", "lable": "cat"}]}},
    "inline prompt item": {"prompts": ["a dog", {"prompt": "a cat", "lable": "cat"}]},
    "output": {**CLASSES, "output": {"uri": "./out/x", "shardsize": 10}},
    "compute": {**CLASSES, "compute": {"worker": 2}},
    "filter": {**CLASSES, "filter": {"classifier": "builtin:digits", "minprob": 0.5}},
    "init": {"init": {"source": "builtin:digits", "strenght": 0.5}},
}


@pytest.mark.parametrize("where", TYPOS)
def test_an_unknown_key_is_refused_by_the_schema_and_by_synthgen(
        where: str, validator: jsonschema.Draft202012Validator) -> None:
    spec = TYPOS[where]
    assert not validator.is_valid(spec)
    with pytest.raises(UserError):
        validate_spec(copy.deepcopy(spec))


# Per-sample values: the schema types a choice's items per field, as synthgen checks them.
BAD_VALUES = {
    "steps choice of text": {**CLASSES, "sampler": {"steps": {"choice": ["ten"]}}},
    "empty steps choice": {**CLASSES, "sampler": {"steps": {"choice": []}}},
    "steps past the bound": {**CLASSES, "sampler": {"steps": 10_001}},
    "negative guidance": {**CLASSES, "sampler": {"guidance_scale": -1}},
    "negative prompt choice of numbers": {"classes": {"names": ["a"], "negative_prompt": {"choice": [1]}}},
    "strength past 1": {"init": {"source": "builtin:digits", "strength": {"choice": [0.5, 2]}}},
}


@pytest.mark.parametrize("where", BAD_VALUES)
def test_a_bad_per_sample_value_is_refused_by_both(
        where: str, validator: jsonschema.Draft202012Validator) -> None:
    assert not validator.is_valid(BAD_VALUES[where])
    with pytest.raises(UserError):
        validate_spec(copy.deepcopy(BAD_VALUES[where]))


# The forms synthgen reads beyond pydantic's plain fields: shorthands and before-validators.
ACCEPTED = {
    "inline prompt list": {"prompts": ["a dog", {"prompt": "a cat", "label": "cat", "count": 2}]},
    "prompt items as strings": {"prompts": {"items": ["a dog", "a cat"], "count": 2}},
    "jpg": {**CLASSES, "output": {"image_format": "jpg"}},
    "JPG": {**CLASSES, "output": {"image_format": "JPG"}},
    "per-sample values": {"sampler": {"steps": {"choice": [10, 20.0]}, "guidance_scale": {"uniform": [1, 3]}},
                          "classes": {"names": ["a"], "negative_prompt": {"choice": ["blurry", "text"]}}},
    "guidance choice": {**CLASSES, "sampler": {"guidance_scale": {"choice": [0, 1.5, 7]}}},
    "init renames classes": {"init": {"source": "builtin:digits", "strength": {"choice": [0.3, 0.6]}},
                             "classes": {"names": {"0": "zero"}}},
    "auto compute": {**CLASSES, "compute": {"workers": "auto", "cpus_per_worker": 2}},
}


@pytest.mark.parametrize("form", ACCEPTED)
def test_the_forms_synthgen_reads_pass_the_schema(
        form: str, validator: jsonschema.Draft202012Validator) -> None:
    spec = ACCEPTED[form]
    validate_spec(copy.deepcopy(spec))
    validator.validate(spec)


def test_a_typod_key_is_one_line_from_plan_and_an_error_from_the_validator(
        tmp_path: Path, validator: jsonschema.Draft202012Validator) -> None:
    text = (ROOT / "pipelines" / "digits.yaml").read_text().replace("  steps: 10", "  stepz: 10")
    spec = tmp_path / "digits.yaml"
    spec.write_text(text)
    errors = list(validator.iter_errors(yaml.safe_load(text)))
    assert len(errors) == 1 and list(errors[0].absolute_path) == ["sampler"]
    assert "'stepz' was unexpected" in errors[0].message
    result = synthgen("plan", str(spec))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: sampler.stepz") and "unknown field" in result.stderr


def walk(node: Any) -> list[Any]:
    """Every dict, list and value inside a JSON document, the document first."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        found += walk(child)
    return found
