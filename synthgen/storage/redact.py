"""Secret redaction: settings that look like credentials never reach a file or a log line."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

SECRET_WORDS = ("secret", "token", "password", "passwd", "credential", "key")
SAFE_KEYS = {"endpoint_url", "region_name", "profile", "anon", "use_ssl", "client_kwargs",
             "config_kwargs", "requester_pays", "default_fill_cache"}
MIN_SECRET_LEN = 6

_WORDS = "|".join(SECRET_WORDS)
_PAIR = re.compile(rf"(?i)([\w.-]*(?:{_WORDS})[\w.-]*['\"]?\s*[:=]\s*['\"]?)([^\s'\",;}}]+)")
_USERINFO = re.compile(r"(://)[^/@\s]+@")


def redact_options(options: dict[str, Any]) -> dict[str, Any]:
    """storage_options without anything that looks like a credential, at any depth."""
    clean: dict[str, Any] = {}
    for key, value in options.items():
        lowered = key.lower()
        if key not in SAFE_KEYS and any(word in lowered for word in SECRET_WORDS):
            continue
        clean[key] = redact_options(value) if isinstance(value, dict) else value
    return clean


def text_redactor(environ: dict[str, str] | None = None) -> Callable[[str], str]:
    """A function that removes secrets from a line of text: values of secret-looking
    environment variables, `secret=...`-style pairs and credentials inside URLs."""
    env = os.environ if environ is None else environ
    values = sorted({v for k, v in env.items()
                     if any(w in k.lower() for w in SECRET_WORDS) and len(v) >= MIN_SECRET_LEN},
                    key=len, reverse=True)

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return _USERINFO.sub(r"\1***@", _PAIR.sub(r"\1***", text))

    return redact
