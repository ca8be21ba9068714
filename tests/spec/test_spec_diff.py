"""What a refusal of "another job" lists (spec_diff), and `jpg` as an alias of `jpeg`."""

from __future__ import annotations

import pytest

from synthgen.errors import UserError
from synthgen.spec.load import load_spec
from synthgen.spec.plan import Plan, dotted_changes, plan_diff
from tests.conftest import ROOT

DIGITS = ROOT / "pipelines/digits.yaml"


def plan(*overrides: str) -> Plan:
    return Plan.build(load_spec(DIGITS, overrides))


def test_the_diff_lists_dotted_fields_with_old_and_new_values() -> None:
    text = plan_diff(plan(), plan("sampler.steps=20", "seed=3", "compute.workers=4"))
    assert text == "sampler.steps: 10 -> 20, seed: 0 -> 3"  # compute.* does not change the data


def test_the_diff_never_shows_a_secret_and_elides_long_values() -> None:
    old = {"output": {"storage_options": {"secret": "hunter2-secret", "endpoint_url": "http://a"}}}
    new = {"output": {"storage_options": {"secret": "other-secret99", "endpoint_url": "http://b"}}}
    from synthgen.storage.redact import redact_spec

    changes = dotted_changes(redact_spec(old), redact_spec(new))
    assert changes == [("output.storage_options.endpoint_url", "http://a", "http://b")]
    names = ",".join(f"class-{i}" for i in range(40))
    text = plan_diff(plan(), plan(f"classes.names=[{names}]"))
    assert text.startswith('classes.names: ["0", "1", ') and "..." in text and len(text) < 200
    assert "hunter2" not in plan_diff(plan("output.storage_options.password=hunter2-secret"),
                                      plan("output.storage_options.password=hunter3-secret", "seed=1"))


def test_a_manifest_change_is_named_when_no_spec_field_differs() -> None:
    old, new = plan(), plan()
    changed = type(new.manifest)(class_names=new.manifest.class_names, entries=new.manifest.entries[:-1])
    text = plan_diff(old, Plan(spec=new.spec, manifest=changed))
    assert text.startswith("manifest.entries: ")


@pytest.mark.parametrize("alias", ["jpg", "JPG"])
def test_jpg_is_jpeg_with_the_same_job_id(alias: str) -> None:
    spec = load_spec(DIGITS, (f"output.image_format={alias}",))
    assert spec.output.image_format == "jpeg"
    assert Plan.build(spec).job_id == plan("output.image_format=jpeg").job_id != plan().job_id
    with pytest.raises(UserError, match="image_format"):
        load_spec(DIGITS, ("output.image_format=gif",))
