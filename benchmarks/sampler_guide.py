"""The sampler guide: Classification Accuracy Score (CAS), per-class diversity and images/s of a
class-conditional digits model across samplers, steps, guidance scales and per-sample guidance
ranges (`{uniform: [1, 3]}`, `{choice: [1, 1.5, 2, 3]}`), plus the label-fidelity filter.

Each row generates `--per-class` images of every digit with the bare Worker (synthgen's real
path: reverse loop, PNG encoding, Parquet shard, commit marker; no Ray), times it (model loading
excluded), then scores the output with `synthgen.quality.evaluation` against the held-out real digits
(load_digits index >= 1200): CAS and its ratio to real-trained accuracy, for a logistic
regression and an RBF SVM. Guidance rows use the sampler of pipelines/digits.yaml. Diversity is
the card's (output/diversity.py): the mean RMS distance between two images of a class, averaged
over the classes.

    python -m benchmarks.sampler_guide                      # the sweep guide's table (docs/guides/sweep.md)
    python -m benchmarks.sampler_guide --samplers "" --no-filter   # the guidance-range rows
    python -m benchmarks.sampler_guide --samplers ddim:10,ddpm:1000 --guidance 2 --per-class 100
    python -m benchmarks.sampler_guide --model DIR --quick  # a few rows on any digits model

A sampler that cannot draw some digit at all makes the filter row fail: it is skipped, with
the filter's message.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from synthgen.quality.filter import FilterRejected

ROOT = Path(__file__).resolve().parents[1]
DIGITS_SPEC = ROOT / "pipelines" / "digits.yaml"
SAMPLERS = "ddim:10,ddim:25,ddim:50,dpm++:10,dpm++:20,euler-a:25,ddpm:100"
GUIDANCE = "1,1.5,2,3"
RANGES = "uniform:1:3,choice:1:1.5:2:3"
QUICK = ("ddim:10,dpm++:10", "1", "uniform:1:3")


@dataclass(frozen=True)
class Row:
    scheduler: str
    steps: int
    guidance_scale: float | str  # a number, or a range as written: uniform:1:3, choice:1:2:3
    filtered: bool = False

    @property
    def guidance_spec(self) -> Any:
        if isinstance(self.guidance_scale, float):
            return self.guidance_scale
        form, *values = self.guidance_scale.split(":")
        return {form: [float(v) for v in values]}

    @property
    def guidance_text(self) -> str:
        if isinstance(self.guidance_scale, float):
            return f"{self.guidance_scale:g}"
        form, *values = self.guidance_scale.split(":")
        return f"{form} [{', '.join(values)}]"


@dataclass(frozen=True)
class Settings:
    """What every row shares: the model, the job (images of each digit, seed) and the compute."""

    model: str
    per_class: int
    seed: int
    threads: int
    batch_size: int


@dataclass(frozen=True)
class Result:
    row: Row
    images: int
    seconds: float
    cas_lr: float
    ratio_lr: float
    cas_svm: float
    ratio_svm: float
    draws_per_image: float | None
    diversity: float | None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


def rows(default: dict[str, Any], samplers: str, guidance_scales: str, ranges: str = "",
         filtered: bool = True) -> list[Row]:
    """Samplers ("name:steps,...") at the default guidance; guidance scales, then guidance ranges
    at the default sampler; then the default settings with the built-in filter."""
    guidance = float(default["guidance_scale"])
    out = [Row(name, int(steps), guidance)
           for name, steps in (s.rsplit(":", 1) for s in samplers.split(",") if s)]
    base = (default["scheduler"], int(default["steps"]))
    out += [Row(*base, float(g)) for g in guidance_scales.split(",") if g and Row(*base, float(g)) not in out]
    out += [Row(*base, r) for r in ranges.split(",") if r]
    return [*out, Row(*base, guidance, filtered=True)] if filtered else out


def measure(row: Row, settings: Settings, work: Path) -> Result:
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.engine.worker import Worker
    from synthgen.quality.evaluation import EvalConfig, evaluate
    from synthgen.spec.load import validate_spec

    out = work / f"{row.scheduler}-{row.steps}-{row.guidance_scale}-{int(row.filtered)}".replace(":", "_")
    spec: dict[str, Any] = {
        "name": "sampler-guide", "seed": settings.seed, "model": {"source": settings.model, "device": "cpu"},
        "sampler": {"scheduler": row.scheduler, "steps": row.steps, "guidance_scale": row.guidance_spec},
        "classes": {"count": settings.per_class, "names": [str(d) for d in range(10)]},
        "output": {"uri": str(out), "shard_size": 500},
        "compute": {"batch_size": settings.batch_size},
    }
    if row.filtered:
        spec["filter"] = {"classifier": "builtin:digits", "min_prob": 0.5, "max_draws": 20}
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    worker = Worker(prepared.job, threads=settings.threads)
    worker.adapter.generate(prepared.plan.samples(prepared.plan.shard(0))[:8], worker.spec.sampler)  # warm-up
    start = time.perf_counter()
    for index in range(prepared.plan.num_shards):
        worker.run_shard(index)
    seconds = time.perf_counter() - start
    report = evaluate(EvalConfig(str(out), "builtin:digits"))
    lr, svm = report["classifiers"]["logistic_regression"], report["classifiers"]["svm_rbf"]
    return Result(row, prepared.plan.total, seconds, lr["accuracy"], lr["ratio"], svm["accuracy"],
                  svm["ratio"], _draws_per_image(out) if row.filtered else None, _diversity(out))


def _diversity(out: Path) -> float | None:
    """The card's per-class mean distance, averaged over the classes."""
    from synthgen.output import diversity
    from synthgen.output.catalog import Catalog

    stats = diversity.from_markers(Catalog.open(str(out)).shards)
    means = [s.mean_distance for s in stats.values() if s.mean_distance is not None]
    return sum(means) / len(means) if means else None


def _draws_per_image(out: Path) -> float:
    import pyarrow.parquet as pq

    from synthgen.output.catalog import Catalog

    output = Catalog.open(str(out))
    draws = [pq.read_table(output.store.path(s.file), columns=["filter_draws"]).column(0).to_pylist()
             for s in output.shards]
    return sum(map(sum, draws)) / sum(map(len, draws))


def table(results: list[Result]) -> str:
    lines = ["| sampler | steps | guidance | CAS logistic (ratio) | CAS RBF SVM (ratio) | diversity "
             "| images/s |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        name = r.row.scheduler + (" + filter" if r.row.filtered else "")
        speed = f"{r.images_per_s:.0f}"
        if r.draws_per_image:
            speed += f" ({r.draws_per_image:.2f} draws/image)"
        cas = f"{r.cas_lr:.3f} ({r.ratio_lr:.3f}) | {r.cas_svm:.3f} ({r.ratio_svm:.3f})"
        spread = "n/a" if r.diversity is None else f"{r.diversity:.3f}"
        lines.append(f"| {name} | {r.row.steps} | {r.row.guidance_text} | {cas} | {spread} | {speed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:digits", help="A class-conditional model of digits 0-9.")
    parser.add_argument("--per-class", type=int, default=200, help="Images of each digit per row.")
    parser.add_argument("--seed", type=int, default=1, help="The job seed of every row.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads.")
    parser.add_argument("--samplers", default=SAMPLERS, help=f"name:steps,... (default {SAMPLERS})")
    parser.add_argument("--guidance", default=GUIDANCE, help=f"Guidance scales (default {GUIDANCE}).")
    parser.add_argument("--ranges", default=RANGES,
                        help=f"Per-sample guidance ranges, form:values,... (default {RANGES}).")
    parser.add_argument("--no-filter", action="store_true", help="Leave out the filter row.")
    parser.add_argument("--quick", action="store_true", help=f"Only {QUICK[0]} and guidance {QUICK[1]}.")
    parser.add_argument("--json", metavar="FILE", help="Also write the results as JSON.")
    args = parser.parse_args(argv)
    default = yaml.safe_load(DIGITS_SPEC.read_text())
    batch_size = int(default["compute"]["batch_size"])
    settings = Settings(args.model, args.per_class, args.seed, args.threads, batch_size)
    results = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        chosen = QUICK if args.quick else (args.samplers, args.guidance, args.ranges)
        for row in rows(default["sampler"], *chosen, filtered=not args.no_filter):
            try:
                result = measure(row, settings, Path(tmp))
            except FilterRejected as exc:  # a model that cannot draw some digit at all
                print(f"skipped {row}: {exc}", file=sys.stderr, flush=True)
                continue
            results.append(result)
            print(table([result]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"{args.model}, {10 * args.per_class} images a row, job seed {args.seed}, batch size {batch_size}, "
          f"{args.threads} threads, {platform.machine()} ({os.cpu_count()} cores), 1-minute load average "
          f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after\n")
    print(table(results))
    if args.json:
        rows_json = [{**asdict(r), "images_per_s": r.images_per_s} for r in results]
        Path(args.json).write_text(json.dumps(rows_json, indent=2))
    return results


if __name__ == "__main__":
    main()
