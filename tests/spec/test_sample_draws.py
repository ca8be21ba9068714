"""Per-sample draws: sampler ranges, attribute axes, synonyms and descriptions, and their checks.

Every draw is a pure function of the sample's seed (spec/sample_draws.py), so a plan rebuilt
from job.json (a resume, another worker) draws the same values for every sample_id.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.errors import UserError
from synthgen.spec.fingerprint import data_fields
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan, sample_seed
from synthgen.spec.sample_draws import unit
from tests.conftest import write_spec

AXES = {"background": ["on a beach", "in a forest"], "lighting": ["at dawn", "at night", "at noon"]}


def plan_of(**sections: Any) -> Plan:
    spec = {"seed": 3, "classes": {"names": ["cat", "dog"], "count": 40}, **sections}
    return Plan.build(validate_spec(spec))


def test_guidance_range_is_drawn_per_sample_inside_it_and_recorded() -> None:
    plan = plan_of(sampler={"guidance_scale": {"uniform": [1.5, 4.0]}, "steps": {"choice": [2, 5]}})
    samples = [plan.sample(i) for i in range(plan.total)]
    scales = [s.guidance_scale for s in samples]
    assert all(1.5 <= g <= 4.0 for g in scales) and len(set(scales)) == len(scales)
    assert Counter(s.steps for s in samples).keys() == {2, 5}
    # the documented derivation: lo + u(seed, "sampler.guidance_scale") * (hi - lo)
    s = samples[7]
    assert s.seed == sample_seed(3, 7)
    assert s.guidance_scale == pytest.approx(1.5 + unit(s.seed, "sampler.guidance_scale") * 2.5)


def test_draws_are_the_same_in_a_plan_rebuilt_from_its_json() -> None:
    plan = plan_of(sampler={"guidance_scale": {"choice": [1, 1.5, 2, 3]}},
                   classes={"names": ["cat", "dog"], "count": 40, "attributes": AXES,
                            "templates": ["a {name} {background} {lighting}"],
                            "negative_prompt": {"choice": ["blurry", "dark"]}})
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.job_id == plan.job_id
    assert [plan.sample(i) for i in range(plan.total)] == [again.sample(i) for i in range(again.total)]
    assert {plan.sample(i).guidance_scale for i in range(plan.total)} == {1.0, 1.5, 2.0, 3.0}
    assert {plan.sample(i).negative_prompt for i in range(plan.total)} == {"blurry", "dark"}


def test_attributes_fill_the_templates_and_agree_with_the_prompt() -> None:
    templates = ["a photo of a {name} {background} {lighting}", "a {name} {lighting}"]
    plan = plan_of(classes={"names": ["cat", "dog", "owl"], "count": 30, "attributes": AXES,
                            "templates": templates})
    for i in range(plan.total):
        s = plan.sample(i)
        assert s.label_name in s.prompt and s.attributes["lighting"] in s.prompt
        assert (s.attributes["background"] in s.prompt) == ("{background}" in s.template)
        assert s.attributes["background"] == ["on a beach", "in a forest"][
            unit(s.seed, "background") >= 0.5]


def test_weights_shift_the_draws() -> None:
    plan = plan_of(classes={"names": ["cat"], "count": 2000, "templates": ["a {name} {where}"],
                            "attributes": {"where": ["indoors", {"value": "outdoors", "weight": 3}]}})
    counts = Counter(plan.sample(i).attributes["where"] for i in range(plan.total))
    assert 0.70 < counts["outdoors"] / plan.total < 0.80


def test_cycle_mode_covers_every_template_with_every_combination() -> None:
    templates = ["a {name} {background} {lighting}", "a drawing of a {name} {lighting}"]
    plan = plan_of(classes={"names": ["cat"], "count": 12, "attributes": AXES, "attribute_mode": "cycle",
                            "templates": templates})
    seen = {(plan.sample(i).template, tuple(plan.sample(i).attributes.values())) for i in range(12)}
    assert seen == {(t, combo) for t in templates for combo in itertools.product(*AXES.values())}


def test_entries_add_and_override_axes_and_rows_record_null_for_missing_ones() -> None:
    plan = plan_of(classes={"count": 4, "templates": ["a {name} {background}"], "attributes": AXES,
                            "entries": [{"name": "cat"},
                                        {"name": "fish", "attributes": {"background": ["in a tank"],
                                                                        "water": ["murky"]}}]})
    cat, fish = plan.sample(0), plan.sample(4)
    assert fish.prompt == "a fish in a tank" and fish.attributes == {
        "background": "in a tank", "lighting": fish.attributes["lighting"], "water": "murky"}
    assert "water" not in cat.attributes


@pytest.mark.parametrize("kind", ["yaml", "csv"])
def test_axes_from_a_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"axes.{kind}"
    if kind == "yaml":
        path.write_text("background: [on a beach, {value: in a forest, weight: 2}]\n")
    else:
        path.write_text("axis,value,weight\nbackground,on a beach,\nbackground,in a forest,2\n")
    plan = plan_of(classes={"names": ["cat"], "count": 3, "attributes": str(path),
                            "templates": ["a {name} {background}"]})
    values = (("on a beach", 1.0), ("in a forest", 2.0))
    assert plan.manifest.entries[0].attributes == (("background", values),)


def test_synonyms_and_descriptions() -> None:
    plan = plan_of(classes={"count": 200, "templates": ["a photo of a {synonym}, {description}"], "entries": [
        {"name": "crane", "description": "a large wading bird", "synonyms": ["heron-like crane"]}]})
    prompts = Counter(plan.sample(i).prompt for i in range(plan.total))
    assert set(prompts) == {"a photo of a crane, a large wading bird",
                            "a photo of a heron-like crane, a large wading bird"}
    assert min(prompts.values()) > 60  # the class name counts as one synonym


def test_prompt_manifests_use_axes() -> None:
    plan = Plan.build(validate_spec({"prompts": {"items": ["a cat {where}"], "count": 20,
                                                 "attributes": {"where": ["indoors", "outdoors"]}}}))
    assert {plan.sample(i).prompt for i in range(20)} == {"a cat indoors", "a cat outdoors"}


def test_plain_specs_keep_their_job_id_and_new_fields_change_it() -> None:
    base = plan_of()
    assert "attributes" not in json.dumps(data_fields(base.spec))  # job.json keeps every field
    assert plan_of(sampler={"guidance_scale": {"uniform": [1, 3]}}).job_id != base.job_id
    assert plan_of(classes={"names": ["cat", "dog"], "count": 40, "attributes": AXES,
                            "templates": ["a {name} {background}"]}).job_id != base.job_id


BAD = {
    "unknown placeholder": ({"templates": ["a {name} {weather}"], "attributes": AXES}, "classes.templates"),
    "empty axis": ({"attributes": {"background": []}, "templates": ["a {name}"]},
                   "classes.attributes.background"),
    "caption without captions": ({"templates": ["a {name}, {caption}"]}, "classes.templates"),
    "description missing": ({"templates": ["a {name}, {description}"]}, "classes.templates"),
    "range lo > hi": ({"sampler": {"guidance_scale": {"uniform": [4, 1]}}}, "sampler.guidance_scale"),
    "negative range": ({"sampler": {"guidance_scale": {"uniform": [-1, 1]}}}, "sampler.guidance_scale"),
    "unknown distribution": ({"sampler": {"guidance_scale": {"normal": [2, 1]}}}, "sampler.guidance_scale"),
    "steps range": ({"sampler": {"steps": {"uniform": [2, 8]}}}, "sampler.steps"),
    "cycle with weights": ({"attribute_mode": "cycle", "templates": ["a {name} {w}"],
                            "attributes": {"w": [{"value": "x", "weight": 2}]}}, "classes.attributes"),
    "reserved axis name": ({"attributes": {"name": ["x"]}, "templates": ["a {name}"]},
                           "classes.attributes.name"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_design_fields_are_one_line_exit_2(tmp_path: Path, case: str) -> None:
    change, field = BAD[case]
    spec: dict[str, Any] = {"classes": {"names": ["cat"], "count": 2}, "output": {"uri": str(tmp_path / "o")}}
    if "sampler" in change:
        spec.update(change)
    else:
        spec["classes"].update(change)
    with pytest.raises(UserError) as err:
        Plan.build(validate_spec(spec))
    assert err.value.field == field
    result = CliRunner().invoke(main, ["plan", str(write_spec(tmp_path / "spec.yaml", spec))])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and field in lines[0], result.stderr
    assert not (tmp_path / "o").exists()
