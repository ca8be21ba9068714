"""Commands that run a job: plan, run, resume, captions."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
from synthgen.commands.estimate import calibrate as calibrate_job
from synthgen.commands.estimate import estimate_size
from synthgen.engine.ctrl_c import remembering_ctrl_c
from synthgen.engine.driver import Prepared, RunOptions, load_job, prepare, run_job
from synthgen.engine.plan_checks import label_table
from synthgen.output.catalog import read_markers
from synthgen.output.job_record import find_job_record
from synthgen.spec.init_manifest import describe_init
from synthgen.spec.load import load_spec
from synthgen.spec.manifest import Entry


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
    prepared = prepare(load_spec(spec, overrides, output), fetch="cached")
    info, plan = prepared.info, prepared.plan
    summary = {**plan.summary(), "model": plan.spec.model.source,
               "model_family": info.family if info else None,
               "model_revision": info.revision if info else None, "output": plan.spec.output.uri,
               "labels": label_table(plan, info),
               "first_shard": {"split": plan.shard(0).split, "per_class": plan.per_class([plan.shard(0)])}}
    size = estimate_size(plan, info)
    summary["estimate"] = size.to_json() if size else None
    timing = calibrate_job(plan) if calibrate else None
    summary["calibration"] = timing.to_json() if timing else None
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    note = f"{info.family}, {info.revision}" if info else "not cached here; resolved on the workers"
    summary["model"] = f"{summary['model']} ({note})"
    summary["splits"] = ", ".join(f"{name} {n}" for name, n in summary["splits"].items())
    for key in ("job_id", "samples", "shards", "shard_size", "order", "splits", "classes", "model", "output"):
        click.echo(f"{key:>12}: {summary[key]}")
    if plan.spec.init and "init" in summary:  # img2img: the source listed, with its fingerprint
        click.echo(f"{'init':>12}: {describe_init(plan.spec.init, summary['init'])}")
    _echo_labels(summary["labels"], plan.manifest.entries)
    click.echo(f"{'disk':>12}: {size.describe() if size else 'unknown until the model is on this machine'}")
    for i, line in enumerate(timing.describe(summary["samples"]) if timing else []):
        click.echo(f"{'calibration' if i == 0 else 'wall time':>12}: {line}")


def _echo_labels(labels: list[dict[str, Any]], entries: tuple[Entry, ...], shown: int = 50) -> None:
    """label, name, images, and the model's class id with where it came from."""
    click.echo(f"{'':>12}  {'label':>5}  {'name':<20} {'images':>8}  model class")
    for row, entry in zip(labels[:shown], entries, strict=False):
        source = row["from"]
        target = {"prompt": "(by prompt)", "unknown": "(resolved on the workers)"}.get(
            source, f"{row['model_class']} ({source})")
        click.echo(f"{'':>12}  {row['label']:>5}  {str(row['name']):<20} {entry.count:>8}  {target}")
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
    options = RunOptions(address=address, takeover=takeover, per_worker=per_worker)
    prepared = prepare(load_spec(spec, overrides, output))
    with resumable(prepared, address):
        report(run_job(prepared, options))


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
    spec, manifest = load_job(uri, overrides)
    options = RunOptions(address=address, takeover=takeover, repair=repair, per_worker=per_worker)
    prepared = prepare(spec, manifest)
    with resumable(prepared, address):
        report(run_job(prepared, options))


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
    from synthgen.commands.captions import job_captions  # ray: only for this command

    table = job_captions(prepare(load_spec(spec, overrides, output)), address)
    for row in table.to_pylist():
        click.echo(f"{row['label_name']}\t{row['caption_id']}\t{row['caption']}")


# Ctrl-C during `run` or `resume`: say what is committed (it is kept) and the exact command that
# goes on from there, then exit 130 (128 + SIGINT), as shells report an interrupted command.
@contextmanager
def resumable(prepared: Prepared, address: str | None) -> Iterator[None]:
    """Around a run of `prepared`: on Ctrl-C, one line with the committed shards and the resume
    command, exit 130."""
    try:
        with remembering_ctrl_c():
            yield
    except KeyboardInterrupt:
        click.echo(f"\n{interrupted_line(prepared, address)}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def interrupted_line(prepared: Prepared, address: str | None) -> str:
    """What an interrupted run leaves: the committed shards and samples, and what to run next."""
    plan, uri = prepared.plan, prepared.plan.spec.output.uri
    try:
        started = find_job_record(prepared.store) is not None
        markers = read_markers(prepared.store) if started else {}
    except (OSError, KeyboardInterrupt) as exc:
        return (f"interrupted; could not read what is committed at {uri} ({type(exc).__name__}); "
                f"`{_resume(uri, address)}` goes on from what is")
    if not started:
        return f"interrupted before anything was written to {uri}; rerun: {_rerun()}"
    rows = sum(m.rows for m in markers.values())
    return (f"interrupted: {len(markers)}/{plan.num_shards} shards ({rows}/{plan.total} images) are "
            f"committed at {uri} and kept; resume with: {_resume(uri, address)}")


def _resume(uri: str, address: str | None) -> str:
    words = ["synthgen", "resume", uri] + (["--address", address] if address else [])
    return shlex.join(words)


def _rerun() -> str:
    return shlex.join(["synthgen", *sys.argv[1:]])
