"""job_id is the data's fingerprint: pinned for every shipped spec, in both sample orders."""

from __future__ import annotations

import pytest

from synthgen.errors import UserError
from synthgen.spec.load import load_spec
from synthgen.spec.plan import Plan
from tests.conftest import ROOT

# A changed id here means every existing output of that spec would be refused as "another job".
# sdxl-prompts is not pinned: its prompts file's absolute path is part of its fingerprint, so its
# id depends on the folder the repository is cloned into.
# The default order, interleaved (every shard mixes the classes), since the usability release:
SHIPPED = {"digits": "1d11073c9ed5af98", "cifar10-sd": "9f91baff1aef8a28",
           "imagenet100-dit": "449dd2f8cabc1399"}
# Measured before the package was split into stages (commit cd98290): `output.order: by_class`
# lays samples out as those outputs have them, and so keeps their ids (they resume with it).
BY_CLASS = {"digits": "22014dc43b14286c", "cifar10-sd": "50daeae736249313",
            "imagenet100-dit": "8852f7b93555a355"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_specs_keep_their_job_id(name: str) -> None:
    spec = ROOT / "pipelines" / f"{name}.yaml"
    assert Plan.build(load_spec(spec)).job_id == SHIPPED[name]
    assert Plan.build(load_spec(spec, ("output.order=by_class",))).job_id == BY_CLASS[name]


def test_execution_settings_leave_job_id_alone() -> None:
    base = Plan.build(load_spec(ROOT / "pipelines/digits.yaml")).job_id
    moved = load_spec(ROOT / "pipelines/digits.yaml", ("compute.workers=4", "compute.batch_size=7"),
                      output="s3://elsewhere/digits")
    assert Plan.build(moved).job_id == base
    assert Plan.build(load_spec(ROOT / "pipelines/digits.yaml", ("seed=1",))).job_id != base


def test_output_format_parquet_keeps_the_id_and_webdataset_is_another_job() -> None:
    digits = ROOT / "pipelines/digits.yaml"
    base = Plan.build(load_spec(digits)).job_id
    assert Plan.build(load_spec(digits, ("output.format=parquet",))).job_id == base
    assert Plan.build(load_spec(digits, ("output.format=webdataset",))).job_id != base
    with pytest.raises(UserError, match="output.format") as err:
        load_spec(digits, ("output.format=tfrecord",))
    assert "webdataset" in str(err.value)
