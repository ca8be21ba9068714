"""Any fsspec URL opened in this process from plain settings, with synthgen's S3 defaults.

A URL whose scheme no filesystem knows, or whose filesystem package is not installed, is the
user's mistake: one line naming the URL and the fix (the pip install), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.registry import known_implementations

from synthgen.errors import UserError
from synthgen.storage.s3 import error_code, is_s3, with_defaults


def open_fs(uri: str, options: dict[str, Any]) -> tuple[Any, str]:
    """(filesystem, path) for any fsspec URL, built in this process from plain settings."""
    with _known_scheme(uri):
        return fsspec.core.url_to_fs(uri, **with_defaults(uri, options))


def write_url(uri: str, options: dict[str, Any], data: bytes) -> None:
    """One whole file at a local path or any fsspec URL."""
    with _known_scheme(uri), fsspec.open(uri, "wb", **with_defaults(uri, options)) as f:
        f.write(data)


def read_url(uri: str, options: dict[str, Any], cap: int, field: str) -> bytes:
    """The whole file at a local path or any fsspec URL, up to `cap` bytes (see capped.py)."""
    fs, path = open_fs(uri, options)
    with _known_scheme(uri):
        return read_capped(fs, path, cap, field, uri)


@contextlib.contextmanager
def _known_scheme(uri: str) -> Iterator[None]:
    protocol = fsspec.core.split_protocol(uri)[0]
    try:
        yield
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise
        raise UserError("URL", uri, f"no filesystem knows the scheme {protocol}://; use a local "
                        "path, s3://, gs://, az://, http(s):// or another fsspec URL") from None
    except ImportError as exc:
        hint = known_implementations.get(protocol or "", {}).get("err") or str(exc)
        package = re.search(r"[Ii]nstall (\S+)", hint)
        fix = f"pip install {package.group(1)}" if package else f"install its package ({hint})"
        raise UserError("URL", uri, f"{protocol}:// needs a filesystem package that is not "
                        f"installed; {fix}") from None


# The one bounded reader of files that come from outside: a user's manifest, a model's config,
# a remote model's files. A file's size is whatever its server says, and an HTTP body may never
# end, so every such read goes in chunks and stops at a cap named in the error, instead of
# filling memory or the disk first.
CHUNK = 1 << 20
MANIFEST_CAP = 256 << 20  # a manifest, an attribute file, a spec: rows of text
CONFIG_CAP = 16 << 20  # a model's JSON config, a classifier's class list
IMAGE_CAP = 64 << 20  # one encoded image of an init source
WEIGHTS_CAP = 256 << 30  # one weight file of a remote model whose listing gives no size


class TooLarge(UserError):
    """A file past its cap: one line naming the field, the file and the cap."""

    def __init__(self, field: str, value: object, cap: int) -> None:
        super().__init__(field, value, f"is larger than the cap of {_size(cap)} for {field} "
                         "(or its server never ends the body); give a smaller file")
        self.cap = cap

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.field, self.value, self.cap)


def read_capped(fs: Any, path: str, cap: int, field: str, value: object = None) -> bytes:
    """The whole file, read in chunks; past `cap` bytes it stops and raises TooLarge."""
    parts: list[bytes] = []
    total = 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(min(CHUNK, cap + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > cap:
                raise TooLarge(field, path if value is None else value, cap)
    return b"".join(parts)


def copy_capped(fs: Any, path: str, local: Path, cap: int, field: str, value: object = None) -> None:
    """A remote file copied to a local one in chunks; past `cap` bytes the partial copy is removed
    and TooLarge raised, so a body that never ends cannot fill the disk."""
    total = 0
    try:
        with fs.open(path, "rb") as f, open(local, "wb") as out:
            while chunk := f.read(min(CHUNK, cap + 1 - total)):
                total += len(chunk)
                if total > cap:
                    raise TooLarge(field, path if value is None else value, cap)
                out.write(chunk)
    except BaseException:
        local.unlink(missing_ok=True)
        raise


def read_local(path: Path | str, cap: int, field: str) -> bytes:
    """A local file given by a user or a model folder, bounded like a remote one."""
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(field, os.fspath(path), cap)
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


# An object store's refusals that are the user's to fix, told as one line naming the field.
#
# Missing credentials, an unreachable endpoint, a missing bucket, a wrong region and access denied
# are mistakes in a spec or an environment, not runtime failures. The first request to an output,
# a manifest or a model (`check_reachable`, before anything is read or written) is made with short
# timeouts and one retry, so an unreachable endpoint is named in seconds, not after botocore's ten
# patient attempts (93 s); every later request keeps the patient defaults (storage/s3.py).
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
