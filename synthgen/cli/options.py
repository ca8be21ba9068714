"""What every command shares: error handling (one line, exit 2 for a user's mistake) and options."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from synthgen.errors import JobFailed, UserError
from synthgen.storage.redact import redact_text

if TYPE_CHECKING:
    from synthgen.api import RunResult

EXIT_USER, EXIT_FAILED = 2, 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as `cat big | head` ends in a shell


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A user's mistake is one line and exit 2; a runtime failure names its cause, exit 1.
    Ctrl-C exits 130 with one line; a reader that closed the pipe early (`| head`), 141."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            if debug:
                raise
            click.echo(f"error: {_one_line(exc)}", err=True)
            sys.exit(EXIT_USER)
        except JobFailed as exc:
            click.echo(f"error: {redact_text(str(exc))}", err=True)
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            _drop_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:
            if debug:
                raise
            click.echo(f"error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for "
                       "details)", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


def _drop_stdout() -> None:
    """The reader is gone: point stdout at /dev/null so that the flush at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _one_line(exc: BaseException) -> str:
    """The message, redacted (secrets never reach the terminal), on one line."""
    return " ".join(redact_text(str(exc)).split())


spec_argument = click.argument("spec", type=click.Path(dir_okay=False))
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a spec field by dotted path (repeatable).")
output_option = click.option("--output", metavar="URI", help="Output URI (overrides output.uri).")
address_option = click.option("--address", metavar="ADDR",
                              help="Ray cluster to drive (default: RAY_ADDRESS, else local Ray).")
takeover_option = click.option("--takeover", is_flag=True,
                               help="Take the output's job lock from a driver that is really dead.")
per_worker_option = click.option("--per-worker", is_flag=True,
                                 help="Also show each worker's throughput (images/s).")



dashboard_option = click.option(
    "--address", metavar="URL",
    help="The Ray cluster's dashboard (Jobs API), e.g. http://HEAD:8265 "
         "(default: RAY_API_SERVER_ADDRESS).")


def report(result: RunResult) -> None:
    click.echo(f"done: {result.samples} images in {result.shards} shards at {result.uri} "
               f"(job {result.job_id})")
