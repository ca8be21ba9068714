"""An object store's refusals that are the user's to fix, told as one line naming the field.

Missing credentials, an unreachable endpoint, a missing bucket, a wrong region and access denied
are mistakes in a spec or an environment, not runtime failures. The first request to an output,
a manifest or a model (`check_reachable`, before anything is read or written) is made with short
timeouts and one retry, so an unreachable endpoint is named in seconds, not after botocore's ten
patient attempts (93 s); every later request keeps the patient defaults (storage/s3.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from synthgen.errors import UserError
from synthgen.storage.filesystem import open_fs
from synthgen.storage.s3 import error_code, is_s3

# The first request's client: 3 s to connect and to read a reply, two tries in all (explicit
# settings win over AWS_MAX_ATTEMPTS), s3fs's own retries off, and an instance of its own.
PROBE_CONFIG = {"connect_timeout": 3, "read_timeout": 3,
                "retries": {"mode": "standard", "total_max_attempts": 2}}
CREDENTIALS_FIX = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment, "
                   "or use the cloud's usual credentials; never in the spec")
REGION_CODES = ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException",
                "301")
DENIED_CODES = ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled")


def check_reachable(uri: str, options: dict[str, Any], field: str) -> None:
    """On S3, one read-only request to the bucket and prefix of `uri` (an output, a manifest, a
    model), which every mistake above fails; other stores answer their own way."""
    if not is_s3(uri):
        return
    options = {**options, "skip_instance_cache": True,
               "config_kwargs": {**options.get("config_kwargs", {}), **PROBE_CONFIG}}
    fs, path = open_fs(uri, options)
    fs.retries = 1
    bucket, _, key = path.rstrip("/").partition("/")
    with user_errors(uri, field):
        fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1)


@contextlib.contextmanager
def user_errors(uri: str, field: str) -> Iterator[None]:
    """Raise the store errors inside as a UserError naming `field`; let every other error pass."""
    try:
        yield
    except Exception as exc:
        fix = user_fix(exc, uri)
        if fix is None:
            raise
        raise UserError(field, uri, fix) from None


def user_fix(exc: BaseException, uri: str) -> str | None:
    """What is wrong and how to fix it, for a store error that is the user's; else None."""
    bucket = uri.split("://", 1)[-1].split("/", 1)[0]
    fix = _client_fix(exc)
    if fix:
        return fix
    code = error_code(exc)
    if isinstance(exc, FileNotFoundError) or code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist; check that the bucket exists, or create it"
    if code in REGION_CODES:
        return (f"bucket {bucket!r} is in another region than the client's ({code}); set AWS_REGION "
                "(or storage_options.client_kwargs.region_name) to the bucket's region")
    if isinstance(exc, PermissionError) or code in DENIED_CODES:
        return (f"access to bucket {bucket!r} is denied ({code or type(exc).__name__}); use "
                "credentials that may list and write it")
    return None


def _client_fix(exc: BaseException) -> str | None:
    """For the errors botocore raises before any reply: no credentials, no connection."""
    try:
        from botocore import exceptions as boto  # botocore: optional, comes with s3fs (the s3 extra)
    except ImportError:  # s3fs is not installed: no S3 request was made
        return None
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return f"no AWS credentials were found ({type(exc).__name__}); {CREDENTIALS_FIX}"
    if isinstance(exc, boto.ConnectionError | boto.ReadTimeoutError):
        return (f"the store at {_endpoint(exc)} cannot be reached ({type(exc).__name__}); check "
                "AWS_ENDPOINT_URL or storage_options.endpoint_url, and that the store is up")
    return None


def _endpoint(exc: Any) -> str:
    """The scheme and host of the URL botocore could not reach (its request's URL, query and all)."""
    url = urlsplit(getattr(exc, "kwargs", {}).get("endpoint_url") or "")
    return f"{url.scheme}://{url.netloc}" if url.netloc else "the S3 endpoint"
