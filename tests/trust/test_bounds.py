"""Sizes are bounded (exit 2 naming the field) and costs do not grow with samples."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthgen.errors import UserError
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from tests.conftest import synthgen, tiny_spec, write_spec


def plan(**sections: Any) -> Plan:
    base = {} if "prompts" in sections else {"classes": {"names": ["a"]}}
    return Plan.build(validate_spec({**base, **sections}))


@pytest.mark.parametrize(("sections", "field"), [
    ({"classes": {"names": ["a"], "count": 10**20}}, "classes.count"),
    ({"classes": {"entries": [{"name": "a", "count": 10**12}]}}, "classes.entries[0].count"),
    ({"prompts": {"items": ["x"], "count": 10**15}}, "prompts.count"),
    ({"classes": {"names": [str(i) for i in range(20)], "count": 10**9}}, "classes.count"),
    ({"output": {"shard_size": 10**7}}, "output.shard_size"),
    ({"classes": {"names": ["a"], "count": 10**9}, "output": {"shard_size": 1}}, "output.shard_size"),
    ({"sampler": {"height": 10**6}}, "sampler.height"),
    ({"sampler": {"width": 100_000}}, "sampler.width"),
    ({"sampler": {"steps": 10**9}}, "sampler.steps"),
    ({"compute": {"batch_size": 10**8}}, "compute.batch_size"),
])
def test_upper_bounds_fail_fast_naming_the_field(sections: dict[str, Any], field: str) -> None:
    with pytest.raises(UserError) as caught:
        plan(**sections)
    assert caught.value.field == field


def test_manifest_file_counts_are_bounded(tmp_path: Any) -> None:
    (tmp_path / "c.csv").write_text("name,count\na,100000000000000000000\n")
    with pytest.raises(UserError, match=r"classes\[0\]\.count"):
        plan(classes={"source": str(tmp_path / "c.csv")})


def test_a_plan_of_100_million_samples_costs_no_memory_per_sample() -> None:
    tracemalloc.start()
    big = plan(classes={"names": [str(i) for i in range(10)], "count": 10_000_000})
    summary = big.summary()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert summary["samples"] == 100_000_000 and summary["per_class"]["3"] == 10_000_000
    assert peak < 8 << 20  # a byte per sample would be 100 MB


def test_duplicate_names_and_prompt_labels_scale_linearly() -> None:
    names = [f"n{i}" for i in range(50_000)]
    with pytest.raises(UserError, match="unique"):
        plan(classes={"names": [*names, "n7"]})
    items = [{"prompt": f"p{i}", "label": f"l{i}"} for i in range(50_000)]
    prompts = plan(prompts={"items": items})
    assert prompts.manifest.entries[-1].label == 49_999


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize("where", ["spec", "manifest"])
def test_yaml_aliases_are_refused_not_expanded(tmp_path: Path, class_model: Path, where: str) -> None:
    """A few hundred bytes of nested aliases would build 9**9 nodes: refused in one line."""
    spec = tmp_path / "spec.yaml"
    if where == "spec":
        spec.write_text(LAUGHS + yaml.safe_dump(tiny_spec(class_model, tmp_path / "out")))
    else:
        (tmp_path / "classes.yaml").write_text("names: [a, b]\n" + LAUGHS)
        source = {"source": str(tmp_path / "classes.yaml")}
        write_spec(spec, tiny_spec(class_model, tmp_path / "out", classes=source))
    done = synthgen("plan", str(spec), timeout=60)
    assert done.returncode == 2 and "YAML alias *a" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
