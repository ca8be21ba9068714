"""The `synthgen` command line: the Click group, with the commands of each module added."""

from __future__ import annotations

import logging
import sys

import click

from synthgen.cli import cluster, jobs, outputs, quality, training


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Full tracebacks and debug logs.")
@click.version_option(package_name="synthgen")
def main(debug: bool) -> None:
    """synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="synthgen: %(message)s", stream=sys.stderr)
    for noisy in ("diffusers", "ray", "fsspec", "s3fs", "botocore", "aiobotocore", "urllib3",
                  "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


for command in (jobs.plan, jobs.run, jobs.resume, outputs.status, outputs.verify, outputs.preview,
                outputs.export, outputs.show, quality.eval_, training.train, cluster.submit,
                cluster.jobs, cluster.cancel, cluster.run_submitted):
    main.add_command(command)
