"""Commands that read an output: status, verify, show, preview, export, sample."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from synthgen.cli.options import EXIT_FAILED, handle_errors
from synthgen.errors import UserError

if TYPE_CHECKING:
    from synthgen.output.export import NamingStyle

# Each command imports what it runs in its body: `synthgen --help` and `synthgen show --help`
# load this module, and must not wait for pyarrow or the spec models.

# How `status` reads the job lock's holder (storage/lock.py holder_state).
LOCK_STATES = {
    "alive": " (holds the job lock)",
    "dead": ("; that process is no longer running, so its job lock is stale: a plain `synthgen run` "
             "of the spec or `synthgen resume {uri}` takes it over"),
    "silent": ("; it has stopped sending heartbeats, so its job lock is probably stale: if that driver "
               "is dead, `synthgen resume {uri} --takeover` takes it over"),
}


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
    # when it runs: --help stays fast
    from synthgen.output.catalog import Catalog, job_status
    from synthgen.storage.lock import describe
    from synthgen.storage.store import Store

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
        click.echo(f"driver: {describe(state['driver'])}{LOCK_STATES[state['driver_state']].format(uri=uri)}")


@click.command()
@click.argument("uri")
@handle_errors
def verify(uri: str) -> None:
    """Re-read every committed shard of URI and check size, sha256 and rows against its marker.

    \b
    Example:
      synthgen verify ./out/digits
    """
    # when it runs: --help stays fast
    from synthgen.output.catalog import Catalog
    from synthgen.output.verify import pending_shards
    from synthgen.output.verify import verify as verify_store
    from synthgen.storage.lock import current_holder, describe, holder_state
    from synthgen.storage.store import Store

    store = Store(uri)
    problems = verify_store(store)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(EXIT_FAILED)
    catalog = Catalog.read(store)
    pending = pending_shards(catalog)
    if not pending:
        click.echo(f"ok: every shard of {uri} matches its marker")
        return
    driver = current_holder(store)
    state = (f"the job is running (driver {describe(driver)})" if driver and holder_state(driver) == "alive"
             else f"the job is not finished; `synthgen resume {uri}` runs them")
    click.echo(f"ok: the {len(catalog.markers)} committed shards of {uri} match their markers; "
               f"{len(pending)} of {catalog.plan.num_shards} shards pending (not committed yet): {state}")


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
    # when it runs: --help stays fast
    from synthgen.output.preview import PreviewOptions, write_preview

    size = write_preview(uri, dest, PreviewOptions(per_row=per_row, max_rows=max_rows))
    click.echo(f"wrote {dest} ({size} bytes)")


@click.command()
@click.argument("uri")
@click.option("--format", "fmt", required=True, type=click.Choice(["imagefolder", "webdataset"]),
              help="imagefolder: one folder per class; webdataset: tar shards with json metadata.")
@click.option("--output", "dest", required=True, metavar="DIR", help="A new or empty folder (or URL).")
@click.option("--names", type=click.Choice(["prefixed", "plain"]), default="prefixed", show_default=True,
              help="ImageFolder folders: prefixed with the label id (00_zero, 01_one), so that "
                   "readers that sort folders keep synthgen's ids; or the plain class names.")
@click.option("--split", metavar="NAME", help="Export one of the output's splits (output.splits).")
@click.option("--partial", is_flag=True, help="Export an unfinished job's committed shards, naming "
              "the missing ones (refused without it).")
@handle_errors
def export(uri: str, fmt: str, dest: str, names: NamingStyle, split: str | None,  # noqa: PLR0913
           partial: bool) -> None:
    """Copy the images of URI into an ImageFolder tree or WebDataset tar shards, then check counts.

    An ImageFolder export also writes classes.json (label id -> class name).

    \b
    Examples:
      synthgen export ./out/digits --format imagefolder --output ./digits-imagefolder
      synthgen export s3://bucket/digits --format webdataset --output ./digits-wds
    """
    # when it runs: --help stays fast
    from synthgen.output.export import ExportOptions
    from synthgen.output.export import export as export_output

    done = export_output(uri, fmt, dest, ExportOptions(names=names, split=split, partial=partial))
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
    # when it runs: --help stays fast
    from synthgen.output.show import show as show_output
    from synthgen.storage.store import Store

    show_output(Store(uri), click.echo)


@click.command()
@click.argument("uri")
@click.argument("sample_id", type=int)
@click.option("--output", "dest", metavar="FILE", help="Also write the regenerated image there.")
@click.option("--threads", type=click.IntRange(min=1), metavar="N",
              help="torch threads (default: what each actor of a local run gets on this machine; "
                   "pixels match bit for bit only with the job's threads per worker).")
@handle_errors
def sample(uri: str, sample_id: int, dest: str | None, threads: int | None) -> None:
    """Regenerate sample SAMPLE_ID of the job at URI from its stored seed and settings, in its
    original batch, and say whether its bytes match the stored image (exit 1 when not).

    \b
    Examples:
      synthgen sample ./out/digits 137
      synthgen sample ./out/digits 137 --output sample-137.png
    """
    # when it runs: --help stays fast
    from synthgen.commands.regenerate import regenerate
    from synthgen.output.catalog import Catalog
    from synthgen.storage.filesystem import write_url
    from synthgen.storage.store import Store

    done = regenerate(Catalog.read(Store(uri)), sample_id, threads)
    if dest:
        try:
            write_url(dest, {}, done.image)
        except OSError as exc:
            raise UserError("--output", dest, f"cannot write there ({exc.strerror or exc}); "
                            "choose a writable path") from None
    batch = done.batch
    ids = [s.sample_id for s in batch.samples]
    click.echo(f"sample {sample_id}: shard {batch.marker.shard}, draw {batch.draw}, position "
               f"{batch.index + 1} of its batch of {len(ids)} (sample_ids {_id_list(ids)}), "
               f"{done.device}, {done.threads} torch thread(s)" + (f"; wrote {dest}" if dest else ""))
    if done.match:
        click.echo(f"match: the regenerated image's {len(done.image)} bytes equal the stored ones")
        return
    what = ("the stored bytes are not a readable image of that size" if done.max_diff is None else
            f"max pixel difference {done.max_diff} ({done.differing} pixel values differ)")
    click.echo(f"mismatch: {what}")
    sys.exit(EXIT_FAILED)


def _id_list(ids: list[int]) -> str:
    """[5, 6, 7, 8] -> '5..8'; ids with gaps (a redraw's batch) -> '5, 7, 9'."""
    if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}..{ids[-1]}"
    return ", ".join(map(str, ids[:8])) + (f", ... ({len(ids)} in all)" if len(ids) > 8 else "")
