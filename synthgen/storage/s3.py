"""S3 client settings for every s3:// filesystem synthgen opens (outputs, manifests, models).

Why these defaults:
- retries: botocore's "standard" mode retries throttling (503 SlowDown), 5xx, timeouts and
  connection resets with exponential backoff and full jitter (capped at 20 s), so many actors
  hitting one prefix back off without moving in lockstep. s3fs adds its own few retries on top
  for errors botocore cannot see (a body cut off mid-read).
- checksums: since botocore 1.36 every upload carries a CRC32 checksum by default, which many
  S3-compatible stores (older MinIO, Ceph RGW, GCS's XML API, and others) reject. "when_required"
  sends checksums only where the API demands them. End-to-end integrity does not depend on it:
  every commit marker holds the data file's sha256, and `synthgen verify` re-hashes.
- no listings cache: many processes write one output, so a cached listing or a cached "not
  found" in one of them is wrong the moment another commits a shard.
The user's own storage_options and the standard AWS variables (AWS_RETRY_MODE,
AWS_MAX_ATTEMPTS, AWS_REQUEST_CHECKSUM_CALCULATION, AWS_RESPONSE_CHECKSUM_VALIDATION) win.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import fsspec

from synthgen.storage.redact import redact_text

S3_PROTOCOLS = ("s3", "s3a")

# botocore Config settings as (section, key, value, the AWS variable that overrides it).
CONFIG_DEFAULTS: tuple[tuple[str | None, str, Any, str | None], ...] = (
    ("retries", "mode", "standard", "AWS_RETRY_MODE"),
    ("retries", "max_attempts", 10, "AWS_MAX_ATTEMPTS"),
    (None, "connect_timeout", 10, None),
    (None, "read_timeout", 60, None),
    (None, "request_checksum_calculation", "when_required", "AWS_REQUEST_CHECKSUM_CALCULATION"),
    (None, "response_checksum_validation", "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION"),
)

# The driver hands its AWS settings to its actors, so an actor on a cluster reaches the same store
# as the driver. Only an allow-list of plain settings (endpoint, region, profile, retry mode and
# checksums) goes through Ray's runtime_env, which Ray writes into its logs; every other AWS_*
# variable (keys, tokens, role and file settings) travels as an actor argument (`Credentials`),
# which it does not.
FORWARDED_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                  "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
                  "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION")
PRIVATE_PREFIX = "AWS_"


def is_s3(uri: str) -> bool:
    return fsspec.core.split_protocol(uri)[0] in S3_PROTOCOLS


def with_defaults(uri: str, options: dict[str, Any]) -> dict[str, Any]:
    """storage_options for `uri`, with synthgen's S3 client defaults under the user's own."""
    if not is_s3(uri):
        return options
    merged = copy.deepcopy(options)
    merged.setdefault("use_listings_cache", False)
    config = merged.setdefault("config_kwargs", {})
    for section, key, value, env_var in CONFIG_DEFAULTS:
        target = config.setdefault(section, {}) if section else config
        if key not in target and not (env_var and os.environ.get(env_var)):
            target[key] = value
    return merged


def refused_precondition(exc: BaseException) -> bool:
    """Did the store refuse a conditional request (HTTP 412): a create-only put of an object that
    exists, an If-Match put or delete of a changed one?

    s3fs raises FileExistsError only when the reply names the failed condition (AWS, moto);
    SeaweedFS's reply names none, and s3fs raises a bare OSError(EINVAL) for it: read the
    store's reply behind it, never the message.
    """
    return isinstance(exc, FileExistsError) or error_code(exc) in ("PreconditionFailed", "412")


def error_code(exc: BaseException) -> str | None:
    """The store's error code (`NoSuchBucket`, `412`...) behind an error s3fs translated (its
    cause) or botocore raised; None for an error no reply came with. A reply without a code
    gives its HTTP status."""
    for error in (exc, exc.__cause__ or exc.__context__):
        response = getattr(error, "response", None) or {}
        code = response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode")
        if code:
            return str(code)
    return None


def forwarded_env() -> dict[str, str]:
    """The driver's plain AWS settings (safe in Ray's logs). One whose value holds a secret
    (an endpoint URL with `user:password@`) travels with the credentials instead."""
    return {k: v for k in FORWARDED_VARS if (v := os.environ.get(k)) and redact_text(v) == v}


class Credentials:
    """The driver's AWS credential variables, carried to an actor; never shown by repr."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    @classmethod
    def from_env(cls) -> Credentials:
        """Every AWS_* variable that `forwarded_env` does not carry."""
        plain = forwarded_env()
        return cls({k: v for k, v in os.environ.items()
                    if k.startswith(PRIVATE_PREFIX) and k not in plain and v})

    def install(self) -> None:
        """Make them this process's own, before it opens any filesystem."""
        os.environ.update(self.values)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(sorted(self.values))}: redacted)"


def abort_uploads(fs: Any, prefix: str, ours: Callable[[str], bool]) -> list[str]:
    """Abort multipart uploads left pending under `prefix` (bucket/key) whose file name `ours`
    accepts (synthgen's own); returns their keys.

    s3fs aborts an upload that raises, but not one whose process died: its parts would linger,
    invisible and billed, until aborted. Another tool's uploads under the prefix are its own.
    """
    bucket, _, key = prefix.partition("/")
    listing = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
    keys = []
    for upload in listing.get("Uploads", []):
        if not ours(upload["Key"].rsplit("/", 1)[-1]) or "/" in upload["Key"][len(key):]:
            continue
        fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=upload["Key"],
                   UploadId=upload["UploadId"])
        keys.append(upload["Key"])
    return keys
