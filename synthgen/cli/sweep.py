"""`synthgen sweep`: pilots over a grid of settings, scored, ranked, and what the full job costs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from synthgen.cli.options import address_option, handle_errors, set_option, spec_argument
from synthgen.errors import UserError
from synthgen.quality.ranks import RANKS, check_rank
from synthgen.spec.limits import MAX_CELLS

if TYPE_CHECKING:
    from rich.table import Table

# Each command imports what it runs in its body: `synthgen --help` and `synthgen sweep --help`
# load this module, and must not wait for scikit-learn, pyarrow or Ray.

PIPE_WIDTH = 120  # the table's width into a pipe or a file; a cell's text wraps inside it
SETTING_WIDTH = 16  # a setting's column is at least this wide (or as wide as its longest value)
UNBOUNDED = 10_000  # columns: measured this wide, a table's least width is its own


@click.command()
@spec_argument
@click.option("--grid", "grid", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="An axis: a dotted spec key (as --set takes) and its values, each read as YAML "
                   "(repeatable; the cells are the product of the axes).")
@click.option("--per-class", type=click.IntRange(min=1), required=True, metavar="N",
              help="Images of each class (each prompt, for a prompt manifest) in every cell.")
@click.option("--real", metavar="SOURCE",
              help="Real labeled test data for the CAS (as `synthgen eval` takes).")
@click.option("--train-real", "--real-train", "real_train", metavar="SOURCE",
              help="Real training data for the ratio (as `synthgen eval`; --real-train is the same option).")
@click.option("--output", metavar="URI",
              help="The sweep's folder: cells/<k>/, sweep.json, sweep.png (default: output.uri + '-sweep').")
@set_option
@click.option("--max-cells", type=click.IntRange(min=1), default=MAX_CELLS, show_default=True,
              help="Refuse a grid with more cells than this.")
@click.option("--rank", type=click.Choice(list(RANKS)), default=None,
              help="The metric that orders the cells (default: cas, the lower of the two CAS ratios, "
                   "with --real; diversity without).")
@click.option("--estimate-workers", "workers", type=click.IntRange(min=1), multiple=True, metavar="N",
              help="Also estimate the full job on N workers (repeatable; the sweep's pool always).")
@click.option("--sizes", metavar="F1,F2,...",
              help="Also the best cell's CAS against nested subsets of it (as `synthgen eval --sizes`).")
@click.option("--write-best", "best_file", metavar="FILE",
              help="Write the spec with the best cell's settings here.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure of every cell as JSON.")
@address_option
@handle_errors
def sweep(spec: str, **options: Any) -> None:
    """Run a small pilot job for every cell of a grid of settings over SPEC, all on one pool of
    actors that loads the model once, then rank the cells by how good a training set each makes
    and say what the full job (the spec's own counts) would cost with each.

    Each cell is a real synthgen job in URI/cells/<k>/ (committed, resumable: run the same
    command again after an interruption). Results: URI/sweep.json and URI/sweep.png.

    \b
    Examples:
      synthgen sweep pipelines/digits.yaml --grid sampler.guidance_scale=1.0,2.5 \\
          --grid sampler.steps=5,10 --per-class 20 --real builtin:digits --output ./out/sweep
      synthgen sweep pets.yaml --grid sampler.scheduler=ddim,dpm++ --per-class 50 --json
    """
    # when it runs: --help stays fast
    from synthgen.commands.sweep import SweepRequest, plan_sweep, run_sweep
    from synthgen.commands.sweep_results import check_best_path, sweep_results, write_best
    from synthgen.engine.interrupts import remembering_ctrl_c
    from synthgen.quality.evaluation import load_real
    from synthgen.quality.size_curve import format_curve, parse_sizes

    real, best_file = options["real"], options["best_file"]
    rank = check_rank(options["rank"], real)
    sizes = parse_sizes(options["sizes"]) if options["sizes"] else None
    if sizes and not real:
        raise UserError("--sizes", options["sizes"], "needs a real set to score against; give --real SOURCE")
    if best_file:
        check_best_path(best_file)
    plan = plan_sweep(SweepRequest(spec, options["grid"], options["per_class"], options["overrides"],
                                   options["output"], options["max_cells"]))
    # the real sets load before anything runs (a bad source is refused up front), once for every cell
    real_sets = load_real(real, options["real_train"], plan.store.storage_options) if real else None
    with remembering_ctrl_c():
        run = run_sweep(plan, options["address"])
    results = sweep_results(plan, run, {"real": real, "real_sets": real_sets, "rank": rank,
                                        "workers": options["workers"], "sizes": sizes})
    if best_file:
        results["best_spec"] = str(write_best(plan, results, best_file))
    if options["as_json"]:
        click.echo(json.dumps(results, indent=2))
        return
    _table(results)
    if results["best_curve"]:
        click.echo(f"the best cell ({results['best']}) against the share of it trained on:")
        click.echo(format_curve(results["best_curve"]))


def _table(results: dict[str, Any]) -> None:
    # when it runs: --help stays fast
    from rich.console import Console

    console = Console()  # a terminal: the table fits its width
    if not console.is_terminal:  # a pipe or a log: its own width, not 80 (--json has every figure)
        console = Console(width=PIPE_WIDTH)
    keys = [axis["key"] for axis in results["axes"]]
    real = results["real"] is not None
    filtered = any(c["filter"] for c in results["cells"])
    names = ["CAS LR (ratio)", "CAS SVM (ratio)"] if real else []
    names += ["diversity", "near-dup", *(["accepted"] if filtered else []), "img/s", "s/1k img",
              f"full job, {results['pool']['workers']} worker(s)"]
    headers = ["#", "cell", *(key.rsplit(".", 1)[-1] for key in keys), *names]
    rows = [_row(results, index, keys, real, filtered) for index in results["order"]]
    title = (f"synthgen sweep {results['output']}: {len(results['cells'])} cells, "
             f"{results['per_class']} images per class each, best first by {results['rank']}")
    end = 2 + len(keys)
    whole = _grid(title, headers, rows, range(2, end))
    if console.measure(whole, options=console.options.update_width(UNBOUNDED)).minimum <= console.width:
        console.print(whole)
    else:  # too narrow for both: each cell's settings, then its figures
        console.print(_grid("settings of each cell", headers[1:end], [r[1:end] for r in rows], range(1, end)))
        console.print(_grid(title, headers[:2] + headers[end:], [r[:2] + r[end:] for r in rows], range(0)))
    console.print(f"model loads: {_loads(results['actors'])}; figures in {results['output']}/sweep.json, "
                  f"plot in {results['output']}/sweep.png"
                  + (f"; best spec in {results['best_spec']}" if results.get("best_spec") else ""))


def _grid(title: str, headers: list[str], rows: list[list[str]], settings: range) -> Table:
    """Rows best first; a figure never wraps (its header may), a setting wraps within its column."""
    from rich.table import Table  # when it runs: --help stays fast

    table = Table(title=title)
    for i, header in enumerate(headers):
        longest = max(len(row[i]) for row in rows)
        table.add_column(header, justify="left" if i < 2 or i in settings else "right", overflow="fold",
                         min_width=min(longest, SETTING_WIDTH) if i in settings else longest)
    for place, row in enumerate(rows, start=1):
        table.add_row(*row, style="bold green" if place == 1 else None)
    return table


def _row(results: dict[str, Any], index: int, keys: list[str], real: bool, filtered: bool) -> list[str]:
    """Cell `index`'s place, settings and figures, as the table shows them."""
    cell = next(c for c in results["cells"] if c["cell"] == index)
    row = [str(results["order"].index(index) + 1), str(index), *(_setting(cell["settings"][k]) for k in keys)]
    if real:
        row += [_cas(cell["classifiers"].get(k)) for k in ("logistic_regression", "svm_rbf")]
    row += [_num(cell["diversity"]["mean_distance"]), _pct(cell["diversity"]["near_duplicate_share"])]
    if filtered:
        row.append(_pct((cell["filter"] or {}).get("acceptance_rate")))
    return row + [_num(cell["speed"]["images_per_s"], 1), _num(cell["speed"]["s_per_1000_images"], 2),
                  _cost(cell["full_job"], results["pool"]["workers"])]


def _setting(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _cas(result: dict[str, Any] | None) -> str:
    if not result:
        return "n/a"
    ratio = "" if result["ratio"] is None else f" ({result['ratio']:.3f})"
    return f"{result['accuracy']:.3f}{ratio}"


def _cost(full: dict[str, Any], workers: int) -> str:
    # when it runs: --help stays fast
    from synthgen.engine.progress import format_duration

    estimate = next((e for e in full["estimates"] if e["workers"] == workers), None)
    if estimate is None:
        return "n/a"
    return f"{format_duration(estimate['wall_s'])}, {estimate['device_hours']:.3g} {full['device'].upper()}-h"


def _loads(actors: list[dict[str, Any]]) -> str:
    if not actors:
        return "none (every cell was committed already)"
    return ", ".join(f"actor {a['actor'][:8]} {a['model_loads']}x for {len(a['cells'])} cell(s) ("
                     + ", ".join(f"{model} {n['loads']}x" for model, n in a["loads"].items()) + ")"
                     for a in actors)


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# Commands that score a dataset: `synthgen eval`, the Classification Accuracy Score.
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
    # when it runs: --help stays fast
    from synthgen.quality.evaluation import EvalConfig, evaluate, format_report
    from synthgen.quality.size_curve import format_curve, parse_sizes, size_curve

    config = EvalConfig(uri, real, real_train, max_per_class, split)
    if options["sizes"]:
        curve = size_curve(config, parse_sizes(options["sizes"]), options["seed"])
        click.echo(json.dumps(curve, indent=2) if options["as_json"] else format_curve(curve))
        return
    report = evaluate(config)
    click.echo(json.dumps(report, indent=2) if options["as_json"] else format_report(report))
