"""`synthgen schema`: the job spec's JSON Schema, for editors and validators (loads no model,
no Ray: only the spec's pydantic models)."""

from __future__ import annotations

import click

from synthgen.cli.options import handle_errors
from synthgen.spec.schema import job_schema_text


@click.command()
@handle_errors
def schema() -> None:
    """Print the job spec's JSON Schema, for editors and validators.

    The schema (JSON Schema draft 2020-12) refuses unknown keys, as synthgen does; an editor
    with a YAML language server completes and checks a spec from it.

    \b
    Examples:
      synthgen schema > job-spec.schema.json
      # then, as the first line of a spec:
      # yaml-language-server: $schema=job-spec.schema.json
    """
    click.echo(job_schema_text(), nl=False)
