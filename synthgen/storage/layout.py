"""The names of everything synthgen writes under an output (docs/reference/format.md: layout).

A shard's files are all named `shard-<index:05d>...`: `shard_index` reads the index back from
a marker's or a failure record's name, and refuses any name synthgen did not write. A local
write goes through a temp file named by `temp_name`; `own_temp` recognises one that a killed
writer left, for every reader (the claim check, verify, finalize): one naming rule for both.
"""

from __future__ import annotations

import re
import uuid

from synthgen.errors import UserError

JOB_FILE = "job.json"
SUCCESS_FILE = "_SUCCESS"
INDEX_FILE = "index.parquet"
CARD_FILE = "README.md"
PREVIEW_FILE = "preview.png"
COMMITS_DIR = "_commits"
FAILED_DIR = "_failed"
DATA_DIR = "data"
LOGS_DIR = "_logs"
LOCK_FILE = "_lock.json"
PROBE_DIR = "_probe"
CAPTIONS_FILE = "captions/captions.parquet"  # classes.captions, written once by the first run
CAPTIONS_MARKER = f"{COMMITS_DIR}/captions.json"  # its commit marker, created only if absent

_RECORD_NAME = re.compile(r"shard-(\d{5,})\.json")
DATA_SUFFIXES = (".parquet", ".tar")  # the output formats' data files (output/formats)
# A data file: the shard index, then the attempt id `attempt_id` makes, then the format's suffix.
_DATA_NAME = re.compile(r"shard-(\d{5,})-\d{2,}[0-9a-f]{10}(?:\.parquet|\.tar)")
_TEMP_NAME = re.compile(r"\.(.+)\.[0-9a-f]{32}\.tmp")
# What synthgen itself puts in an output before, or as, it claims it: an output holding only
# these (or nothing) is free for a new job; anything else belongs to someone. job.json is one:
# another driver may create it between our look for it and our listing (its lock then decides).
OWN_ENTRIES = {JOB_FILE, LOCK_FILE, PROBE_DIR, LOGS_DIR}
ROOT_FILES = {JOB_FILE, LOCK_FILE, SUCCESS_FILE, INDEX_FILE, CARD_FILE, PREVIEW_FILE}
# The resolved manifest, beside job.json and named by its content's sha256: written before
# job.json, so an output may hold one (a crash, a lost race) before it holds a job.
_MANIFEST_NAME = re.compile(r"manifest-[0-9a-f]{16}\.parquet")


def manifest_path(sha256: str) -> str:
    return f"manifest-{sha256[:16]}.parquet"


def own_entry(name: str) -> bool:
    """A top-level name synthgen writes before or as it claims an output."""
    return name in OWN_ENTRIES or _MANIFEST_NAME.fullmatch(name) is not None


def marker_path(shard_index: int) -> str:
    return f"{COMMITS_DIR}/shard-{shard_index:05d}.json"


def failure_path(shard_index: int) -> str:
    return f"{FAILED_DIR}/shard-{shard_index:05d}.json"


def data_path(shard_index: int, attempt: str, suffix: str = ".parquet") -> str:
    return f"{DATA_DIR}/shard-{shard_index:05d}-{attempt}{suffix}"


def attempt_id(attempt_no: int) -> str:
    """A data file's attempt: its number, then 10 random hex digits (racing attempts differ)."""
    return f"{attempt_no:02d}{uuid.uuid4().hex[:10]}"


def data_shard(name: str) -> int | None:
    """The shard index in a data file's name, exactly as synthgen writes it
    (`shard-00000-<attempt_id>.parquet` or `.tar`); None for any other name: a file under data/
    that synthgen did not write (`shard-00000-backup.parquet`) is never touched."""
    match = _DATA_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def temp_name(name: str) -> str:
    """The temp file a local write of `name` goes through before its rename or link."""
    return f".{name}.{uuid.uuid4().hex}.tmp"


def own_temp(name: str, folder: str) -> bool:
    """Is `name` in `folder` the temp file of a write of synthgen's that a killed writer left?
    Only temps of names synthgen writes in that folder: anything else stays foreign."""
    match = _TEMP_NAME.fullmatch(name)
    return match is not None and _own_name(match.group(1), folder)


def _own_name(name: str, folder: str) -> bool:
    if folder == DATA_DIR:
        return data_shard(name) is not None
    if folder in (COMMITS_DIR, FAILED_DIR):
        return shard_index(name) is not None or f"{folder}/{name}" == CAPTIONS_MARKER
    return folder == "" and (name in ROOT_FILES or _MANIFEST_NAME.fullmatch(name) is not None)


def shard_index(name: str) -> int | None:
    """The shard index in a marker's or failure record's file name; None for any other name."""
    match = _RECORD_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


# Path confinement: every path built from something read stays inside its root.
#
# Remote model listings, commit markers' `file`, manifest rows, class names and prompts are data,
# not trusted paths. `confine` is the one check they all pass through: a relative POSIX path of
# plain segments, never `..`, `.`, an empty segment, an absolute path, a drive, a backslash or NUL.
_FORBIDDEN_CHARS = ("\\", "\x00")


def confine(rel: str, field: str = "path") -> str:
    """`rel` itself when it is a plain relative path under a root; otherwise a UserError."""
    problem = path_problem(rel)
    if problem:
        raise UserError(field, rel, f"{problem}; a path read from data must stay inside its folder")
    return rel


def path_problem(rel: object) -> str | None:
    """Why `rel` would leave its root (or is no path), or None when it is safe."""
    if not isinstance(rel, str) or not rel:
        return "is empty or not text"
    if any(c in rel for c in _FORBIDDEN_CHARS):
        return "holds a backslash or NUL"
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return "is an absolute path"
    if "://" in rel:
        return "is a URL"
    for segment in rel.split("/"):
        if segment in ("", ".", ".."):
            return f"has a {'empty' if not segment else repr(segment)} segment"
    return None


def relative_to(root: str, path: str, field: str = "path") -> str:
    """`path` (a listing's full path) relative to `root`, confined: the listing may lie."""
    root = root.rstrip("/")
    if not path.startswith(root + "/"):
        raise UserError(field, path, f"lies outside {root}; a listing must stay inside its folder")
    return confine(path[len(root) + 1:], field)
