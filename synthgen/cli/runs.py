"""Commands that run a job: plan, run, resume, captions."""

from __future__ import annotations

import json
from typing import Any

import click

from synthgen.cli.interrupted import resumable
from synthgen.cli.options import (
    address_option,
    handle_errors,
    output_option,
    per_worker_option,
    report,
    set_option,
    spec_argument,
    takeover_option,
)
from synthgen.run.calibrate import calibrate as calibrate_job
from synthgen.run.driver import RunOptions, load_job, prepare, run_job
from synthgen.run.estimate import estimate_size
from synthgen.run.plan_checks import label_table
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
    from synthgen.run.captions_job import job_captions  # ray: only for this command

    table = job_captions(prepare(load_spec(spec, overrides, output)), address)
    for row in table.to_pylist():
        click.echo(f"{row['label_name']}\t{row['caption_id']}\t{row['caption']}")
