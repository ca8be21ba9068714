"""Commands that run a job: plan, run, resume (a shell over synthgen/api.py), captions."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from synthgen.cli.options import (
    EXIT_INTERRUPTED,
    address_option,
    handle_errors,
    output_option,
    per_worker_option,
    report,
    set_option,
    spec_argument,
    takeover_option,
)

if TYPE_CHECKING:
    from synthgen.api import Label

# Each command imports what it runs in its body: `synthgen --help` and `synthgen plan --help`
# load this module, and must not wait for the spec models, pyarrow or Ray.


@click.command()
@spec_argument
@set_option
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--calibrate", is_flag=True,
              help="Also load the model here, time a batch and project the job's wall time.")
@handle_errors
def plan(spec: str, overrides: tuple[str, ...], output: str | None, as_json: bool, calibrate: bool) -> None:
    """Validate SPEC and print its plan and estimated size, without loading a model or writing
    anything (`--calibrate` loads the model here, and still writes nothing).

    \b
    Examples:
      synthgen plan pipelines/digits.yaml --set classes.count=200
      synthgen plan pipelines/digits.yaml --calibrate
    """
    # when it runs: --help stays fast
    from synthgen import api
    from synthgen.spec.load import parse_override

    pairs = dict(parse_override(item) for item in overrides)
    result = api.plan(spec, calibrate=calibrate, **pairs, **({"output.uri": output} if output else {}))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    note = f"{result.model_family}, {result.model_revision}" if result.model_family else \
        "not cached here; resolved on the workers"
    splits = ", ".join(f"{name} {n}" for name, n in result.splits.items())
    for key, value in (("job_id", result.job_id), ("samples", result.samples), ("shards", result.shards),
                       ("shard_size", result.shard_size), ("order", result.order), ("splits", splits),
                       ("classes", result.classes), ("model", f"{result.model} ({note})"),
                       ("output", result.uri)):
        click.echo(f"{key:>12}: {value}")
    if result.init_text:  # img2img: the source listed, with its fingerprint
        click.echo(f"{'init':>12}: {result.init_text}")
    _echo_labels(result.labels)
    size = result.estimate
    click.echo(f"{'disk':>12}: {size.describe() if size else 'unknown until the model is on this machine'}")
    timing = result.calibration
    for i, line in enumerate(timing.describe(result.samples) if timing else []):
        click.echo(f"{'calibration' if i == 0 else 'wall time':>12}: {line}")


def _echo_labels(labels: tuple[Label, ...], shown: int = 50) -> None:
    """label, name, images, and the model's class id with where it came from."""
    click.echo(f"{'':>12}  {'label':>5}  {'name':<20} {'images':>8}  model class")
    for row in labels[:shown]:
        target = {"prompt": "(by prompt)", "unknown": "(resolved on the workers)"}.get(
            row.source, f"{row.model_class} ({row.source})")
        click.echo(f"{'':>12}  {row.label:>5}  {str(row.name):<20} {row.images:>8}  {target}")
    if len(labels) > shown:
        click.echo(f"{'':>12}  ... {len(labels) - shown} more (all of them with --json)")


@click.command()
@spec_argument
@output_option
@set_option
@address_option
@takeover_option
@per_worker_option
@handle_errors
def run(spec: str, output: str | None, overrides: tuple[str, ...], address: str | None,
        takeover: bool, per_worker: bool) -> None:
    """Run the job in SPEC to completion (resuming it if its output holds it already).

    \b
    Examples:
      synthgen run pipelines/digits.yaml
      synthgen run pipelines/digits.yaml --output s3://bucket/digits --set sampler.steps=10
    """
    # when it runs: --help stays fast
    from synthgen import api

    with resumable(address):
        report(api.run(spec, output, overrides, address, takeover=takeover, per_worker=per_worker))


@click.command()
@click.argument("uri")
@set_option
@address_option
@takeover_option
@click.option("--repair", is_flag=True,
              help="First re-hash every committed shard and regenerate those missing or corrupt.")
@per_worker_option
@handle_errors
def resume(uri: str, overrides: tuple[str, ...], address: str | None, takeover: bool,
           repair: bool, per_worker: bool) -> None:
    """Finish the job stored at URI: only uncommitted shards are run.

    Only execution settings may be overridden (compute.*); anything that changes the data
    changes the job id and is refused.

    \b
    Examples:
      synthgen resume ./out/digits --set compute.workers=2
      synthgen resume s3://bucket/digits --repair
    """
    # when it runs: --help stays fast
    from synthgen import api

    with resumable(address):
        report(api.resume(uri, overrides, address, takeover=takeover, repair=repair, per_worker=per_worker))


@click.command()
@spec_argument
@output_option
@set_option
@address_option
@handle_errors
def captions(spec: str, output: str | None, overrides: tuple[str, ...], address: str | None) -> None:
    """Write the captions of SPEC's classes.captions into its output (or show the committed ones),
    without making images; a later `synthgen run` of SPEC uses them.

    \b
    Example:
      synthgen captions pipelines/my-job.yaml --output ./out/my-job
    """
    # when it runs: --help stays fast
    from synthgen.commands.captions import job_captions
    from synthgen.engine.driver import prepare
    from synthgen.spec.load import load_spec

    table = job_captions(prepare(load_spec(spec, overrides, output)), address)
    for row in table.to_pylist():
        click.echo(f"{row['label_name']}\t{row['caption_id']}\t{row['caption']}")


# Ctrl-C during `run` or `resume`: say what is committed (it is kept) and the exact command that
# goes on from there, then exit 130 (128 + SIGINT), as shells report an interrupted command.
@contextmanager
def resumable(address: str | None) -> Iterator[None]:
    """Around a run: on Ctrl-C, one line with the committed shards and the resume command, exit 130."""
    # when it runs: --help stays fast
    from synthgen.api import Interrupted

    try:
        yield
    except Interrupted as exc:
        click.echo(f"\n{exc.line(_resume(exc.uri, address), _rerun())}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _resume(uri: str, address: str | None) -> str:
    words = ["synthgen", "resume", uri] + (["--address", address] if address else [])
    return shlex.join(words)


def _rerun() -> str:
    return shlex.join(["synthgen", *sys.argv[1:]])
