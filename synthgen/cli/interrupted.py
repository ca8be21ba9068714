"""Ctrl-C during `run` or `resume`: say what is committed (it is kept) and the exact command that
goes on from there, then exit 130 (128 + SIGINT), as shells report an interrupted command."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from synthgen.cli.options import EXIT_INTERRUPTED
from synthgen.dataset.catalog import read_markers
from synthgen.dataset.job_record import find_job_record
from synthgen.run.ctrl_c import remembering_ctrl_c
from synthgen.run.driver import Prepared


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
