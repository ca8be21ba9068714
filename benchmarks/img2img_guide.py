"""The img2img guide: do variations of the real training digits help a classifier?

Each row makes `--per-image` variations of every real training digit (builtin:digits, index <
1200) at one strength with the built-in model and the sampler of pipelines/digits.yaml, through
the bare Worker (synthgen's real path, no Ray), then scores it with `synthgen.quality.evaluation`
on the held-out real digits (index >= 1200): a logistic regression and an RBF SVM trained on
real only (the 1,200 training digits), on the synthetic images only, and on real + synthetic.
A reference row generates as many images from noise (no init), class-conditionally.

    python -m benchmarks.img2img_guide                     # the table of docs/guides/img2img.md
    python -m benchmarks.img2img_guide --strengths 0.5 --per-image 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DIGITS_SPEC = ROOT / "pipelines" / "digits.yaml"
TRAIN_DIGITS = 1200


def measure(strength: float | None, per_image: int, seed: int, threads: int, work: Path) -> dict[str, Any]:
    """One row: strength None is plain generation of as many images, per class as the source."""
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.engine.worker import Worker
    from synthgen.inputs.labeled_keys import job_manifest
    from synthgen.quality.evaluation import EvalConfig, evaluate
    from synthgen.spec.load import validate_spec

    default = yaml.safe_load(DIGITS_SPEC.read_text())
    out = work / f"strength-{strength}"
    spec: dict[str, Any] = {
        "name": "img2img-guide", "seed": seed, "model": {"source": "builtin:digits", "device": "cpu"},
        "sampler": default["sampler"], "output": {"uri": str(out), "shard_size": 600},
        "compute": {"batch_size": default["compute"]["batch_size"]},
        "init": {"source": "builtin:digits", "strength": strength or 1.0, "per_image": per_image},
    }
    if strength is None:  # the same class counts as the variations, from noise
        entries = job_manifest(validate_spec(spec)).entries
        spec.pop("init")
        spec["classes"] = {"entries": [{"name": e.label_name, "count": e.count} for e in entries]}
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    worker = Worker(prepared.job, threads=threads)
    start = time.perf_counter()
    for index in range(prepared.plan.num_shards):
        worker.run_shard(index)
    seconds = time.perf_counter() - start
    report = evaluate(EvalConfig(str(out), "builtin:digits", "builtin:digits:train"))
    row: dict[str, Any] = {"strength": strength, "images": prepared.plan.total, "seconds": round(seconds, 1)}
    keys = ("real_accuracy", "accuracy", "ratio", "real_plus_synthetic_accuracy", "real_plus_synthetic_ratio")
    for name, result in report["classifiers"].items():
        row[name] = {k: result[k] for k in keys}
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| images | real only: logistic / SVM | synthetic only: logistic (ratio) / SVM (ratio) "
             "| real + synthetic: logistic (ratio) / SVM (ratio) |", "|---|---|---|---|"]
    for row in rows:
        lr, svm = row["logistic_regression"], row["svm_rbf"]
        name = "noise, no init" if row["strength"] is None else f"strength {row['strength']:g}"
        lines.append(
            f"| {name}, {row['images']} | {lr['real_accuracy']:.3f} / {svm['real_accuracy']:.3f} "
            f"| {lr['accuracy']:.3f} ({lr['ratio']:.3f}) / {svm['accuracy']:.3f} ({svm['ratio']:.3f}) "
            f"| {lr['real_plus_synthetic_accuracy']:.3f} ({lr['real_plus_synthetic_ratio']:.3f}) / "
            f"{svm['real_plus_synthetic_accuracy']:.3f} ({svm['real_plus_synthetic_ratio']:.3f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strengths", default="0.3,0.5,0.7", help="Strengths, one row each.")
    parser.add_argument("--per-image", type=int, default=2, help="Variations of every real training digit.")
    parser.add_argument("--seed", type=int, default=1, help="The job seed of every row.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads.")
    parser.add_argument("--no-reference", action="store_true", help="Leave out the no-init row.")
    parser.add_argument("--json", metavar="FILE", help="Also write the results as JSON.")
    args = parser.parse_args(argv)
    strengths: list[float | None] = [float(s) for s in args.strengths.split(",") if s]
    if not args.no_reference:
        strengths.append(None)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for strength in strengths:
            rows.append(measure(strength, args.per_image, args.seed, args.threads, Path(tmp)))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(f"\nbuiltin:digits, {args.per_image} variations of each of the {TRAIN_DIGITS} real training "
          f"digits, job seed {args.seed}, {args.threads} threads, {platform.machine()} "
          f"({os.cpu_count()} cores), 1-minute load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
