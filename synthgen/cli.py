"""The `synthgen` command line: a Click group whose commands delegate to the modules."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from synthgen.errors import JobFailed, UserError

EXIT_USER, EXIT_FAILED = 2, 1


def _handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A user's mistake is one line and exit 2; a runtime failure names its cause, exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER)
        except JobFailed as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except Exception as exc:
            if debug:
                raise
            click.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
                       err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Full tracebacks and debug logs.")
@click.version_option(package_name="synthgen")
def main(debug: bool) -> None:
    """synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="synthgen: %(message)s", stream=sys.stderr)
    for noisy in ("diffusers", "ray", "fsspec", "s3fs", "botocore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


spec_argument = click.argument("spec", type=click.Path(dir_okay=False))
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a spec field by dotted path (repeatable).")
output_option = click.option("--output", metavar="URI", help="Output URI (overrides output.uri).")
address_option = click.option("--address", metavar="ADDR",
                              help="Ray cluster to drive (default: RAY_ADDRESS, else local Ray).")


@main.command()
@spec_argument
@set_option
@output_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_handle_errors
def plan(spec: str, overrides: tuple[str, ...], output: str | None, as_json: bool) -> None:
    """Validate SPEC and print its plan, without loading a model or writing anything.

    \b
    Example:
      synthgen plan pipelines/digits.yaml --set classes.count=200
    """
    from synthgen.driver import prepare
    from synthgen.spec import load_spec

    prepared = prepare(load_spec(spec, overrides, output))
    summary = {**prepared.plan.summary(), "model": prepared.info.source,
               "model_revision": prepared.info.revision, "output": prepared.plan.spec.output.uri}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for key in ("job_id", "samples", "shards", "shard_size", "classes", "model", "output"):
        click.echo(f"{key:>12}: {summary[key]}")
    for name, count in summary["per_class"].items():
        click.echo(f"{'':>12}  {name}: {count}")


@main.command()
@spec_argument
@output_option
@set_option
@address_option
@_handle_errors
def run(spec: str, output: str | None, overrides: tuple[str, ...], address: str | None) -> None:
    """Run the job in SPEC to completion (resuming it if its output holds it already).

    \b
    Examples:
      synthgen run pipelines/digits.yaml
      synthgen run pipelines/digits.yaml --output s3://bucket/digits --set sampler.steps=10
    """
    from synthgen.driver import prepare, run_job
    from synthgen.spec import load_spec

    _report(run_job(prepare(load_spec(spec, overrides, output)), address))


@main.command()
@click.argument("uri")
@set_option
@address_option
@_handle_errors
def resume(uri: str, overrides: tuple[str, ...], address: str | None) -> None:
    """Finish the job stored at URI: only uncommitted shards are run.

    Only execution settings may be overridden (compute.*); anything that changes the data
    changes the job id and is refused.

    \b
    Example:
      synthgen resume ./out/digits --set compute.workers=2
    """
    from synthgen.driver import load_job, prepare, run_job

    spec, manifest = load_job(uri, overrides)
    _report(run_job(prepare(spec, manifest), address))


@main.command()
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
@_handle_errors
def status(uri: str, as_json: bool) -> None:
    """Show how far the job at URI is: shards and samples committed, failures.

    \b
    Example:
      synthgen status ./out/digits --json
    """
    from synthgen.status import job_status
    from synthgen.storage import Store

    state = job_status(Store(uri))
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    click.echo(f"job {state['job_id']}: {'complete' if state['complete'] else 'incomplete'}")
    click.echo(f"shards {state['shards_committed']}/{state['shards_total']}, "
               f"samples {state['samples_committed']}/{state['samples_total']}")
    for failure in state["failed_shards"]:
        click.echo(f"failed shard {failure['shard']}: {failure['error']}")


@main.command()
@click.argument("uri")
@_handle_errors
def verify(uri: str) -> None:
    """Re-read every committed shard of URI and check size, sha256 and rows against its marker.

    \b
    Example:
      synthgen verify ./out/digits
    """
    from synthgen.status import verify as verify_store
    from synthgen.storage import Store

    problems = verify_store(Store(uri))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(EXIT_FAILED)
    click.echo(f"ok: every shard of {uri} matches its marker")


def _report(state: dict[str, Any]) -> None:
    click.echo(f"done: {state['samples_committed']} images in {state['shards_committed']} shards "
               f"at {state['uri']} (job {state['job_id']})")


if __name__ == "__main__":
    main()
