"""The sample order: a bijection computed arithmetically, classes mixed in every window, splits
stratified, and counts per class over shards that agree with visiting every sample."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from synthgen.spec.load import load_spec, validate_spec
from synthgen.spec.plan import Plan
from synthgen.spec.sample_order import SampleOrder, floor_sums
from tests.conftest import ROOT

SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_floor_sums_match_the_definition() -> None:
    rng = random.Random(0)
    for _ in range(300):
        n, m, a = rng.randint(0, 60), rng.randint(1, 50), rng.randint(0, 120)
        bs = [rng.randint(0, m) for _ in range(6)]
        assert floor_sums(n, m, a, bs).tolist() == [sum((a * i + b) // m for i in range(n)) for b in bs]


@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("splits", [{"train": 1.0}, SPLITS])
def test_every_sample_once_and_counts_agree_with_a_visit(interleaved: bool, splits: dict[str, float]) -> None:
    rng = random.Random(1)
    for _ in range(60):
        counts = [rng.randint(1, 40) for _ in range(rng.randint(1, 7))]
        order = SampleOrder.build(counts, splits, interleaved)
        located = [order.locate(s) for s in range(order.total)]
        every = [(e, k) for e, c in enumerate(counts) for k in range(c)]
        assert sorted((e, k) for _, e, k in located) == every
        assert all(order.sample_id(e, k) == s for s, (_, e, k) in enumerate(located))
        for split in order.splits:
            lo = rng.randint(split.start, split.start + split.size)
            hi = rng.randint(lo, split.start + split.size)
            seen = Counter(located[s][1] for s in range(lo, hi))
            assert split.counts_in(lo, hi).tolist() == [seen[e] for e in range(len(counts))]


def test_splits_are_stratified_exactly_per_class() -> None:
    order = SampleOrder.build([100, 37, 5], SPLITS, interleaved=True)
    per = Counter((order.locate(s)[0], order.locate(s)[1]) for s in range(order.total))
    assert [per["train", e] for e in range(3)] == [80, 29, 4]  # 29.6, 3.7, 3.7: largest remainders
    assert [per["validation", e] for e in range(3)] == [10, 4, 1]  # 4.0, 0.5, 0.5: ties to the first
    assert [per["test", e] for e in range(3)] == [10, 4, 0]


def test_the_imagenet100_first_shard_holds_every_class() -> None:
    plan = Plan.build(load_spec(ROOT / "pipelines/imagenet100-dit.yaml"))
    first = Counter(s.label for s in plan.samples(plan.shard(0)))
    assert len(first) == 100 and min(first.values()) >= 5, first
    assert plan.per_class([plan.shard(0)]) == {plan.manifest.class_names[k]: v for k, v in first.items()}


def test_every_digits_shard_and_a_streaming_prefix_hold_every_class() -> None:
    plan = Plan.build(load_spec(ROOT / "pipelines/digits.yaml", ("classes.count=300",)))
    for shard in plan.shards():
        assert {s.label for s in plan.samples(shard)} == set(range(10))
    assert {plan.sample(i).label for i in range(64)} == set(range(10))
    by_class = Plan.build(load_spec(ROOT / "pipelines/digits.yaml", ("output.order=by_class",)))
    assert {s.label for s in by_class.samples(by_class.shard(0))} == {0, 1, 2}  # the old layout


def test_shards_belong_to_one_split_and_rows_say_which() -> None:
    splits = "output.splits={train: 0.9, validation: 0.05, test: 0.05}"
    spec = load_spec(ROOT / "pipelines/digits.yaml", (splits,))
    plan = Plan.build(spec)
    assert plan.per_split() == {"train": 900, "validation": 50, "test": 50}
    assert [s.split for s in plan.shards()] == ["train"] * 4 + ["validation", "test"]
    for shard in plan.shards():
        assert {s.split for s in plan.samples(shard)} == {shard.split}
        assert all(plan.shard_of(s.sample_id) == shard for s in plan.samples(shard))
    assert Counter(s.label for s in plan.samples(plan.shard(5))) == Counter({i: 5 for i in range(10)})


def test_a_hundred_million_samples_plan_without_listing_them() -> None:
    spec = load_spec(ROOT / "pipelines/digits.yaml", ("classes.count=10000000", "output.shard_size=1000"))
    plan = Plan.build(spec)
    assert plan.total == 100_000_000 and plan.num_shards == 100_000
    last = plan.sample(plan.total - 1)
    assert plan.shard_of(last.sample_id).index == plan.num_shards - 1
    assert sum(plan.per_class([plan.shard(7), plan.shard(8), plan.shard(99_999)]).values()) == 3000


@pytest.mark.parametrize(("splits", "message"), [
    ({"train": 0.9, "test": 0.2}, "sum to 1.1"),
    ({"train": 1.5}, "must be in (0, 1]"),
    ({"bad name": 1.0}, "letters, digits or _"),
])
def test_bad_splits_name_the_problem(splits: dict[str, float], message: str) -> None:
    spec = load_spec(ROOT / "pipelines/digits.yaml").model_dump()
    spec["output"]["splits"] = splits
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_spec(spec)


def test_the_layout_keeps_its_split_order_through_job_json() -> None:
    """job.json sorts keys: the layout must not follow the mapping's order (nor may job_id)."""
    spec = load_spec(ROOT / "pipelines/digits.yaml", ("output.splits={test: 0.1, train: 0.9}",))
    plan = Plan.build(spec)
    again = Plan.from_json(json.loads(json.dumps(plan.to_json(), sort_keys=True)))
    assert plan.split_names == again.split_names == ("train", "test")
    assert [plan.sample(i) for i in (0, 899, 900, 999)] == [again.sample(i) for i in (0, 899, 900, 999)]


def test_a_split_with_no_sample_is_refused() -> None:
    spec = load_spec(ROOT / "pipelines/digits.yaml",
                     ("classes.count=2", "output.splits={train: 0.99, test: 0.01}"))
    with pytest.raises(Exception, match="output.splits.test"):
        Plan.build(spec)
