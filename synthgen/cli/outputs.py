"""Commands that read an output: status, verify, show, preview, export."""

from __future__ import annotations

import json
import sys

import click

from synthgen.cli.options import EXIT_FAILED, handle_errors
from synthgen.dataset.catalog import Catalog
from synthgen.dataset.export import export as export_output
from synthgen.dataset.preview import PreviewOptions, write_preview
from synthgen.dataset.show import show as show_output
from synthgen.dataset.status import job_status
from synthgen.dataset.verify import verify as verify_store
from synthgen.storage.lock import describe
from synthgen.storage.store import Store


@click.command()
@click.argument("uri")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for machines.")
@handle_errors
def status(uri: str, as_json: bool) -> None:
    """Show how far the job at URI is: shards and samples committed, failures.

    \b
    Example:
      synthgen status ./out/digits --json
    """
    state = job_status(Catalog.read(Store(uri)))
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    click.echo(f"job {state['job_id']}: {'complete' if state['complete'] else 'incomplete'}")
    click.echo(f"shards {state['shards_committed']}/{state['shards_total']}, "
               f"samples {state['samples_committed']}/{state['samples_total']}")
    for failure in state["failed_shards"]:
        click.echo(f"failed shard {failure['shard']}: {failure['error']}")
    if state["driver"]:
        click.echo(f"driver: {describe(state['driver'])} (holds the job lock)")


@click.command()
@click.argument("uri")
@handle_errors
def verify(uri: str) -> None:
    """Re-read every committed shard of URI and check size, sha256 and rows against its marker.

    \b
    Example:
      synthgen verify ./out/digits
    """
    problems = verify_store(Store(uri))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(EXIT_FAILED)
    click.echo(f"ok: every shard of {uri} matches its marker")


@click.command()
@click.argument("uri")
@click.option("--output", "dest", required=True, metavar="PATH", help="Where to write the PNG.")
@click.option("--per-row", default=8, show_default=True, type=click.IntRange(min=1),
              help="Images in each row.")
@click.option("--max-rows", default=20, show_default=True, type=click.IntRange(min=1),
              help="Classes (or prompts) shown at most.")
@handle_errors
def preview(uri: str, dest: str, per_row: int, max_rows: int) -> None:
    """Write a contact sheet of URI: one labeled row per class (or per prompt).

    \b
    Example:
      synthgen preview ./out/digits --output grid.png
    """
    size = write_preview(uri, dest, PreviewOptions(per_row=per_row, max_rows=max_rows))
    click.echo(f"wrote {dest} ({size} bytes)")


@click.command()
@click.argument("uri")
@click.option("--format", "fmt", required=True, type=click.Choice(["imagefolder", "webdataset"]),
              help="imagefolder: one folder per class; webdataset: tar shards with json metadata.")
@click.option("--output", "dest", required=True, metavar="DIR", help="A new or empty folder (or URL).")
@click.option("--partial", is_flag=True, help="Export an unfinished job's committed shards, naming "
              "the missing ones (refused without it).")
@handle_errors
def export(uri: str, fmt: str, dest: str, partial: bool) -> None:
    """Copy the images of URI into an ImageFolder tree or WebDataset tar shards, then check counts.

    \b
    Examples:
      synthgen export ./out/digits --format imagefolder --output ./digits-imagefolder
      synthgen export s3://bucket/digits --format webdataset --output ./digits-wds
    """
    done = export_output(uri, fmt, dest, allow_partial=partial)
    click.echo(f"exported {done.total} images to {dest} ({fmt}, {len(done.counts)} "
               f"{'folders' if fmt == 'imagefolder' else 'tar files'})"
               + (f"; partial: {len(done.missing)} shards missing" if done.missing else ""))


@click.command()
@click.argument("uri")
@handle_errors
def show(uri: str) -> None:
    """Show the output at URI for people: counts per class, shards, throughput, failures, provenance.

    \b
    Example:
      synthgen show ./out/digits
    """
    show_output(Store(uri), click.echo)
