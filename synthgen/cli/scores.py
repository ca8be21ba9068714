"""Commands that score a dataset: `synthgen eval`, the Classification Accuracy Score."""

from __future__ import annotations

import json
from typing import Any

import click

from synthgen.cli.options import handle_errors
from synthgen.quality.evaluation import EvalConfig, evaluate, format_report
from synthgen.quality.size_curve import format_curve, parse_sizes, size_curve


@click.command("eval")
@click.argument("uri")
@click.option("--real", required=True, metavar="SOURCE",
              help="Real labeled test data: builtin:digits (load_digits index >= 1200), an image "
                   "folder (one folder per class), a Parquet dataset or a synthgen output.")
@click.option("--train-real", "--real-train", "real_train", metavar="SOURCE",
              help="Real training data: classifiers trained on it alone and on it + the synthetic "
                   "images give real-only and real + synthetic accuracy and their ratios "
                   "(builtin:digits: index < 1200 unless given). --real-train is the same option.")
@click.option("--max-per-class", type=click.IntRange(min=1), metavar="N",
              help="Use the first N synthetic images of each class only.")
@click.option("--split", metavar="NAME", help="Score one of the output's splits (output.splits).")
@click.option("--sizes", metavar="F1,F2,...",
              help="Train on nested subsets of these fractions (e.g. 0.1,0.25,0.5,1) and report the curve.")
@click.option("--seed", type=int, default=0, show_default=True, help="The order the --sizes subsets take.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
@handle_errors
def eval_(uri: str, real: str, real_train: str | None, max_per_class: int | None, split: str | None,
          **options: Any) -> None:
    """Classification Accuracy Score of the labeled dataset at URI.

    A logistic regression and an RBF SVM are trained three ways and tested on the real data:
    on real training data only, on URI's synthetic images only, and on both; each with its
    ratio to real only. Per-class accuracy, the confusion matrix and per-class diversity come
    with it.

    \b
    Examples:
      synthgen eval ./out/digits --real builtin:digits
      synthgen eval s3://bucket/pets --real ./pets/test --train-real ./pets/train --json
      synthgen eval ./out/digits --real builtin:digits --sizes 0.1,0.25,0.5,1
    """
    config = EvalConfig(uri, real, real_train, max_per_class, split)
    if options["sizes"]:
        curve = size_curve(config, parse_sizes(options["sizes"]), options["seed"])
        click.echo(json.dumps(curve, indent=2) if options["as_json"] else format_curve(curve))
        return
    report = evaluate(config)
    click.echo(json.dumps(report, indent=2) if options["as_json"] else format_report(report))
