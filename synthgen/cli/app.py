"""The `synthgen` command line: a Click group whose commands load on first use.

Each command lives in the module of its group (runs, outputs, sweep, training, cluster, schema); the
group imports a command's module only when that command runs, so `synthgen plan` never pays
for scikit-learn, torch or Ray.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from synthgen import __version__
from synthgen.storage.redact import redact_text

# command -> "module:attribute"
COMMANDS = {
    "plan": "synthgen.cli.runs:plan",
    "run": "synthgen.cli.runs:run",
    "resume": "synthgen.cli.runs:resume",
    "captions": "synthgen.cli.runs:captions",
    "status": "synthgen.cli.outputs:status",
    "verify": "synthgen.cli.outputs:verify",
    "preview": "synthgen.cli.outputs:preview",
    "export": "synthgen.cli.outputs:export",
    "show": "synthgen.cli.outputs:show",
    "sample": "synthgen.cli.outputs:sample",
    "eval": "synthgen.cli.sweep:eval_",
    "sweep": "synthgen.cli.sweep:sweep",
    "train": "synthgen.cli.training:train",
    "submit": "synthgen.cli.cluster:submit",
    "jobs": "synthgen.cli.cluster:jobs",
    "cancel": "synthgen.cli.cluster:cancel",
    "run-submitted": "synthgen.cli.cluster:run_submitted",
    "schema": "synthgen.cli.schema:schema",
}
NOISY_LOGGERS = ("diffusers", "ray", "fsspec", "s3fs", "botocore", "aiobotocore", "urllib3", "filelock")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Full tracebacks and debug logs.")
@click.version_option(version=__version__, prog_name="synthgen")
def main(debug: bool) -> None:
    """synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="synthgen: %(message)s", stream=sys.stderr)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_notices(debug)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter("synthgen: %(message)s"))


class RedactingFormatter(logging.Formatter):
    """Console log lines pass the same redaction as the run log and error lines."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


# Known third-party notices, quiet by default; each library's own setting still shows them.
#
# An embedded Ray warns at every start that token authentication is on, and diffusers and
# transformers log load notices at WARNING (diffusers' "install accelerate" among them): none
# says anything about the user's job, and they break up the progress lines. Each is quieted only
# while the user has not set that library's own switch (RAY_LOGGER_LEVEL, DIFFUSERS_VERBOSITY,
# TRANSFORMERS_VERBOSITY); `--debug` quiets nothing. The variables are set in this process's
# environment, which the embedded Ray's worker processes inherit.
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
RAY_LEVEL_VARIABLE = "RAY_LOGGER_LEVEL"
TOKEN_NOTICE = "Token authentication is"
VERBOSITY_VARIABLES = ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY")
QUIET = "error"


def quiet_notices(debug: bool = False) -> None:
    """Quiet the known notices, unless `debug` or the library's own setting asks for them."""
    if debug:
        return
    for variable in VERBOSITY_VARIABLES:
        os.environ.setdefault(variable, QUIET)
    if RAY_LEVEL_VARIABLE not in os.environ:
        logging.getLogger(RAY_AUTH_LOGGER).addFilter(_not_token_notice)


def _not_token_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(TOKEN_NOTICE)
