"""Secret redaction: one rule, `redact`, for everything synthgen shows or stores.

It serves error messages, job.json, the dataset card, the run log, the shards' provenance
column, Ray's runtime_env and `submit`'s payload. A name is secret by `secret_name`: a known
credential name (`password`, `connection_string`, `AccountKey`, `HF_TOKEN`, ...), or one whose
last word is TOKEN, SECRET, PASSWORD, PASSWD, KEY or SIGNATURE (`AWS_SECRET_ACCESS_KEY`,
`sas_token`). Words are whole: `PWD`, `OLDPWD`, `max_new_tokens`, `KeyError` or `dotted.key`
are no secret, so paths and help text are shown as they are. What is removed:
- mapping keys with a secret name: the key is dropped;
- header values (`headers: {Authorization: ...}`): kept by name, valued "***";
- in text: `name=value` / `name: value` pairs with a secret name, URL userinfo (`://***@`:
  a user part may be an access key id or a token), secret query parameters (`sig=`,
  `X-Amz-Signature=`, `token=`...), `Bearer` tokens, values that look like credentials
  whatever their name (AWS key ids, Hugging Face and GitHub tokens, JWTs, PEM private keys),
  and the values of this process's secret-named environment variables.
Redaction is idempotent (redacting twice gives the same), so a fingerprint of a redacted spec
(job_id) is the same on the first run and on a resume that reads the redacted job.json.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
# Names that hold a credential whatever their last word (normalised: upper case, `_` between words).
KNOWN_SECRETS = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "SIG", "SIGNATURE", "CREDENTIAL",
                 "CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING", "AUTHORIZATION", "COOKIE",
                 "SHARED_ACCESS_SIGNATURE", "X_AMZ_CREDENTIAL", "PRIVATE_KEY_ID"}
SECRET_LAST_WORDS = {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "SIGNATURE"}
# Options that name an account rather than hold a secret (s3fs's access key id): not secrets in
# text, but a stored or shown mapping drops them with the secrets beside them.
ACCOUNT_OPTIONS = {"key", "username", "user"}
HEADER_KEYS = {"headers", "http_headers", "extra_headers"}
# Spec fields that are the dataset's own text (names, prompts): data, never rewritten.
DATA_KEYS = {"names", "entries", "items", "templates", "prompts", "prompt", "negative_prompt",
             "attributes", "synonyms", "description", "instruction", "label_mapping", "manifest"}
MIN_SECRET_LEN = 6  # shorter environment values ("1", "us") would mask ordinary text

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# A `name=value` or `name: value` pair; the value is looked at, not consumed, so that the
# value of one pair (`failed: secret_key=...`) can hold the next pair's name.
_PAIR = re.compile(r"(?<![\w.-])([A-Za-z][\w.-]*)(['\"]?\s*[:=]\s*['\"]?)(?=([^\s'\",;&}]+))")
_QUERY = re.compile(r"(?i)([?&](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
                    r"token|access_token|api_key|apikey|key|password)=)[^&\s'\"#]+")
_USERINFO = re.compile(r"(://)[^/@\s'\"]+@")
# An Authorization header's whole value (`Basic ...`, `Bearer ...`, a bare token).
_AUTH = re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(?![\s'\"]*\*\*\*)[^\n'\"]+")
_BEARER = re.compile(r"\b([Bb]earer|BEARER)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")
# Values that are credentials by their look: AWS key ids, Hugging Face, GitHub and Slack tokens,
# JWTs, PEM private keys (a GOOGLE_APPLICATION_CREDENTIALS file's content).
_LOOKS = re.compile(r"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|"
                    r"xox[abpr]-[A-Za-z0-9-]{10,}|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,})\b"
                    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
                    re.DOTALL)


def secret_name(name: str) -> bool:
    """Does a variable, option or field called `name` hold a credential? Whole words only; a
    dotted name (`--set output.storage_options.secret=`) by its last part. A bare `key` is
    s3fs's access key id, no secret (`dotted.key=value` in help text stays as it is)."""
    words = _CAMEL.sub("_", name.strip().rsplit(".", 1)[-1]).upper().replace("-", "_").strip("_")
    return words in KNOWN_SECRETS or words.rsplit("_", 1)[-1] in SECRET_LAST_WORDS and "_" in words


def redact(value: Any, environ: dict[str, str] | None = None) -> Any:
    """`value` (a mapping, list, string or scalar) with every secret removed, at any depth."""
    values = _env_secrets(os.environ if environ is None else environ)
    return _redact(value, values)


def redact_text(text: str, environ: dict[str, str] | None = None) -> str:
    return redact(str(text), environ)


def redact_stored(text: str) -> str:
    """Text stored in the data (a row's `model`): by the patterns only, never by this shell's
    environment, so a row is the same whoever writes it."""
    return _text(text, [])


def _redact(value: Any, env_values: list[str]) -> Any:
    if isinstance(value, dict):
        clean: dict[Any, Any] = {}
        for key, item in value.items():
            name = str(key)
            if secret_name(name) or name in ACCOUNT_OPTIONS:
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
    text = _LOOKS.sub(MASK, text)
    text = _AUTH.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(rf"\1 {MASK}", text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    return _mask_pairs(text)


def _mask_pairs(text: str) -> str:
    """Every pair with a secret name gets its value masked."""
    out, done = [], 0
    for match in _PAIR.finditer(text):
        name, _, value = match.groups()
        if match.start() < done or not secret_name(name) or value == MASK:
            continue
        out += [text[done:match.end()], MASK]
        done = match.end() + len(value)
    return "".join(out) + text[done:]


def _env_secrets(env: Any) -> list[str]:
    found = {v for k, v in env.items() if secret_name(k) and len(v) >= MIN_SECRET_LEN}
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
