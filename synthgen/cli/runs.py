"""Commands that run a job: plan, run, resume, captions."""

from __future__ import annotations

import json

import click

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
from synthgen.run.driver import RunOptions, load_job, prepare, run_job
from synthgen.spec.load import load_spec


@click.command()
@spec_argument
@set_option
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@handle_errors
def plan(spec: str, overrides: tuple[str, ...], output: str | None, as_json: bool) -> None:
    """Validate SPEC and print its plan, without loading a model or writing anything.

    \b
    Example:
      synthgen plan pipelines/digits.yaml --set classes.count=200
    """
    prepared = prepare(load_spec(spec, overrides, output), fetch="cached")
    info = prepared.info
    summary = {**prepared.plan.summary(), "model": prepared.plan.spec.model.source,
               "model_family": info.family if info else None,
               "model_revision": info.revision if info else None, "output": prepared.plan.spec.output.uri}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    note = f"{info.family}, {info.revision}" if info else "not cached here; resolved on the workers"
    summary["model"] = f"{summary['model']} ({note})"
    for key in ("job_id", "samples", "shards", "shard_size", "classes", "model", "output"):
        click.echo(f"{key:>12}: {summary[key]}")
    for name, count in summary["per_class"].items():
        click.echo(f"{'':>12}  {name}: {count}")


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
    report(run_job(prepare(load_spec(spec, overrides, output)), options))


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
    report(run_job(prepare(spec, manifest), options))


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
