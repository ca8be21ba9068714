"""The names of everything synthgen writes under an output (DESIGN.md: output layout).

A shard's files are all named `shard-<index:05d>...`: `shard_index` reads the index back from
a marker's or a failure record's name, and refuses any name synthgen did not write.
"""

from __future__ import annotations

import re

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

_RECORD_NAME = re.compile(r"shard-(\d{5,})\.json")
_DATA_NAME = re.compile(r"shard-(\d{5,})-([0-9a-z]+)\.parquet")
# What synthgen itself puts in an output before job.json exists: an output holding only
# these (or nothing) is free for a new job; anything else belongs to someone.
OWN_ENTRIES = {LOCK_FILE, PROBE_DIR, LOGS_DIR}


def marker_path(shard_index: int) -> str:
    return f"{COMMITS_DIR}/shard-{shard_index:05d}.json"


def failure_path(shard_index: int) -> str:
    return f"{FAILED_DIR}/shard-{shard_index:05d}.json"


def data_path(shard_index: int, attempt: str) -> str:
    return f"{DATA_DIR}/shard-{shard_index:05d}-{attempt}.parquet"


def data_shard(name: str) -> int | None:
    """The shard index in a data file's name (`shard-00000-<attempt>.parquet`); None for any
    other name: a file under data/ that synthgen did not write is never touched."""
    match = _DATA_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def shard_index(name: str) -> int | None:
    """The shard index in a marker's or failure record's file name; None for any other name."""
    match = _RECORD_NAME.fullmatch(name)
    return int(match.group(1)) if match else None
