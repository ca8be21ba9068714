"""Known third-party notices, quiet by default; each library's own setting still shows them.

An embedded Ray warns at every start that token authentication is on, and diffusers and
transformers log load notices at WARNING (diffusers' "install accelerate" among them): none
says anything about the user's job, and they break up the progress lines. Each is quieted only
while the user has not set that library's own switch (RAY_LOGGER_LEVEL, DIFFUSERS_VERBOSITY,
TRANSFORMERS_VERBOSITY); `--debug` quiets nothing. The variables are set in this process's
environment, which the embedded Ray's worker processes inherit.
"""

from __future__ import annotations

import logging
import os

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
