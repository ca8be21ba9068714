"""Commands for a Ray cluster: submit, jobs, cancel, and the submitted driver (run-submitted)."""

from __future__ import annotations

import json
import sys

import click

from synthgen.cli.options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USER,
    dashboard_option,
    handle_errors,
    output_option,
    report,
    set_option,
    spec_argument,
)

# Each command imports what it runs in its body: `synthgen --help` and `synthgen submit --help`
# load this module, and must not wait for Ray or the spec models.


@click.command()
@spec_argument
@dashboard_option
@output_option
@set_option
@click.option("--wait", is_flag=True, help="Stream the job's log; exit with its outcome.")
@click.option("--ship-package/--no-ship-package", default=True,
              help="Send this synthgen along (default), or use the one installed on the cluster.")
@handle_errors
def submit(spec: str, address: str | None, output: str | None, overrides: tuple[str, ...],
           wait: bool, ship_package: bool) -> None:
    """Submit the job in SPEC to a Ray cluster, whose head then runs its driver (Ray Jobs API).

    \b
    Examples:
      synthgen submit pipelines/digits.yaml --address http://127.0.0.1:8265 --wait
      synthgen submit pipelines/digits.yaml --address http://HEAD:8265 \\
          --output s3://bucket/digits --set compute.workers=8
    """
    # when it runs: --help stays fast
    from synthgen.commands.submit import submit as submit_job
    from synthgen.spec.load import load_spec

    job = submit_job(load_spec(spec, overrides, output), address, ship_package)
    click.echo(f"submitted Ray job {job.ray_job} (synthgen job {job.job_id}) to {job.address}")
    for key, value in (("output", job.output), ("progress", f"synthgen status {job.output}"),
                       ("logs", job.logs_command),
                       ("cancel", f"synthgen cancel {job.ray_job} --address {job.address}"),
                       ("dashboard", job.address)):
        click.echo(f"  {key:>9}: {value}")
    if wait:
        _follow(job.address, job.ray_job)


@click.command()
@dashboard_option
@click.option("--json", "as_json", is_flag=True, help="One JSON list, for machines.")
@handle_errors
def jobs(address: str | None, as_json: bool) -> None:
    """List the jobs synthgen submitted to a Ray cluster, with their status and output.

    \b
    Example:
      synthgen jobs --address http://127.0.0.1:8265
    """
    # when it runs: --help stays fast
    from synthgen.commands.submit import list_jobs

    rows = list_jobs(address)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no synthgen jobs on this cluster")
        return
    for row in [{"ray_job": "RAY JOB", "status": "STATUS", "started": "STARTED", "output": "OUTPUT"},
                *rows]:
        click.echo(f"{row['ray_job']:<26}  {row['status']:<9}  {row['started'] or '-':<19}  {row['output']}")


@click.command()
@click.argument("job_id")
@dashboard_option
@handle_errors
def cancel(job_id: str, address: str | None) -> None:
    """Stop the submitted job JOB_ID (a Ray job id from `synthgen submit` or `synthgen jobs`).

    Committed shards stay in the output; `synthgen resume URI` (or submitting again) continues.

    \b
    Example:
      synthgen cancel synthgen-digits-1a2b3c4d --address http://127.0.0.1:8265
    """
    # when it runs: --help stays fast
    from synthgen.commands.submit import cancel as cancel_job

    row = cancel_job(address, job_id)
    if row["status"] == "STOPPED":
        click.echo(f"{row['ray_job']}: STOPPED; committed shards stay in {row['output']}, "
                   f"`synthgen resume {row['output']}` continues the job")
    elif row["status"] in ("SUCCEEDED", "FAILED"):
        click.echo(f"{row['ray_job']} had ended already: {row['status']}")
    else:
        click.echo(f"{row['ray_job']}: stop requested, still {row['status']}; `synthgen jobs` "
                   "shows when it ends")


@click.command("run-submitted", hidden=True)
@click.argument("payload")
@handle_errors
def run_submitted(payload: str) -> None:
    """The driver of a submitted job, on the cluster (see `synthgen submit`)."""
    # when it runs: --help stays fast
    from synthgen.api import RunResult
    from synthgen.commands.submit import run_submitted as run_payload

    report(RunResult.of(run_payload(payload)))


def _follow(address: str, ray_job: str) -> None:
    # when it runs: --help stays fast
    from synthgen.commands.submit import follow

    try:
        done = follow(address, ray_job, lambda text: click.echo(text, nl=False))
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; the job goes on (`synthgen cancel {ray_job} --address "
                   f"{address}` stops it)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if done.status != "SUCCEEDED":
        click.echo(f"error: {done.describe()}", err=True)
        sys.exit(EXIT_USER if done.exit_code == EXIT_USER else EXIT_FAILED)
