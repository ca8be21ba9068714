"""Secret redaction: one function, `redact`, for everything synthgen shows or stores.

It serves error messages, job.json, the dataset card, the run log, Ray's runtime_env and
`submit`'s payload. What it removes:
- mapping keys that look secret (`secret`, `token`, `password`, `key`, ...): the key is dropped;
- header values (`headers: {Authorization: ...}`): kept by name, valued "***";
- in text: URL userinfo (`user:pass@`), secret query parameters (SAS `sig=`, `X-Amz-Signature`,
  `token=`...), connection-string pairs (`AccountKey=...;`), `Bearer` tokens, `secret=...`
  style pairs, and the values of this process's secret-looking environment variables.
Redaction is idempotent (redacting twice gives the same), so a fingerprint of a redacted spec
(job_id) is the same on the first run and on a resume that reads the redacted job.json.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
SECRET_WORDS = ("secret", "token", "password", "passwd", "pwd", "credential", "key",
                "signature", "auth", "cookie", "connection_string", "connectionstring", "sas")
SAFE_KEYS = {"endpoint_url", "region_name", "profile", "anon", "use_ssl", "client_kwargs",
             "config_kwargs", "requester_pays", "default_fill_cache", "retries", "max_new_tokens"}
HEADER_KEYS = {"headers", "http_headers", "extra_headers"}
# Spec fields that are the dataset's own text (names, prompts): data, never rewritten.
DATA_KEYS = {"names", "entries", "items", "templates", "prompts", "prompt", "negative_prompt",
             "attributes", "synonyms", "description", "instruction", "label_mapping", "manifest"}
MIN_SECRET_LEN = 6

_WORDS = "|".join(SECRET_WORDS)
_PAIR = re.compile(rf"(?i)\b([\w.-]*(?:{_WORDS})[\w.-]*['\"]?\s*[:=]\s*['\"]?)([^\s'\",;&}}]+)")
_QUERY = re.compile(r"(?i)([?&](?:sig|signature|x-amz-signature|x-amz-credential|"
                    r"x-amz-security-token|token|access_token|se|sp|sv|skoid|sktid)=)[^&\s'\"]+")
_USERINFO = re.compile(r"(://)[^/@\s'\"]+@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")


def looks_secret(key: str) -> bool:
    lowered = key.lower()
    return key not in SAFE_KEYS and any(word in lowered for word in SECRET_WORDS)


def redact(value: Any, environ: dict[str, str] | None = None) -> Any:
    """`value` (a mapping, list, string or scalar) with every secret removed, at any depth."""
    values = _env_secrets(os.environ if environ is None else environ)
    return _redact(value, values)


def redact_text(text: str, environ: dict[str, str] | None = None) -> str:
    return redact(str(text), environ)


def _redact(value: Any, env_values: list[str]) -> Any:
    if isinstance(value, dict):
        clean: dict[Any, Any] = {}
        for key, item in value.items():
            name = str(key)
            if looks_secret(name):
                continue
            if name.lower() in HEADER_KEYS and isinstance(item, dict):
                clean[key] = dict.fromkeys(item, MASK)
            elif name in DATA_KEYS:
                clean[key] = item
            else:
                clean[key] = _redact(item, env_values)
        return clean
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, env_values) for v in value)
    if isinstance(value, str):
        return _text(value, env_values)
    return value


def _text(text: str, env_values: list[str]) -> str:
    for secret in env_values:
        text = text.replace(secret, MASK)
    text = _BEARER.sub(rf"\1 {MASK}", text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    return _PAIR.sub(_mask_pair, text)


def _mask_pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if "error" in name.lower() or value == MASK:  # `KeyError: 'x'` names no secret
        return match.group(0)
    return name + MASK


def _env_secrets(env: Any) -> list[str]:
    found = {v for k, v in env.items() if looks_secret(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(found, key=len, reverse=True)


def redact_spec(data: dict[str, Any]) -> dict[str, Any]:
    """A spec (or a job record) as data, redacted: its schema's own fields are kept, every
    `storage_options` mapping loses its secrets, every other string its secret parts. No
    environment values: job_id fingerprints the result, which must not depend on the shell."""
    values: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: node[k] if k in DATA_KEYS else
                    _redact(node[k], values) if k == "storage_options" else walk(node[k])
                    for k in node}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return _text(node, values) if isinstance(node, str) else node

    return walk(data)


def text_redactor(environ: dict[str, str] | None = None) -> Any:
    """`redact_text` with the environment's secrets read once (the run log's per-line use)."""
    values = _env_secrets(os.environ if environ is None else environ)
    return lambda text: _text(str(text), values)
