"""The end of a job: remove orphans, write index.parquet and the dataset card, then _SUCCESS."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from synthgen.card import PREVIEW_FILE, dataset_card
from synthgen.dataset import METADATA_COLUMNS, read_parquet, shard_schema, table_bytes
from synthgen.status import committed_markers
from synthgen.storage import CARD_FILE, DATA_DIR, FAILED_DIR, INDEX_FILE, SUCCESS_FILE, json_bytes

if TYPE_CHECKING:
    from synthgen.driver import Prepared

log = logging.getLogger("synthgen")


def finalize(prepared: Prepared) -> None:
    store, plan = prepared.store, prepared.plan
    markers = committed_markers(store)
    missing = [i for i in range(plan.num_shards) if i not in markers]
    if missing:
        raise RuntimeError(f"cannot finish: shards {missing[:10]} are not committed")
    files = [markers[i]["file"] for i in range(plan.num_shards)]
    remove_orphans(prepared, set(files))
    for name in store.list(FAILED_DIR):
        store.delete(f"{FAILED_DIR}/{name}")
    index = index_table(prepared, files)
    store.put_bytes(INDEX_FILE, table_bytes(index))
    preview = write_preview(prepared, markers)
    store.put_bytes(CARD_FILE, dataset_card(prepared, markers, index, preview).encode())
    store.put_bytes(SUCCESS_FILE, json_bytes({"job_id": plan.job_id, "samples": plan.total,
                                              "shards": plan.num_shards,
                                              "finished_at": time.time()}))
    log.info("job %s complete: %d samples in %s", plan.job_id, plan.total, plan.spec.output.uri)


def write_preview(prepared: Prepared, markers: dict[int, dict[str, Any]]) -> str | None:
    """The card's contact sheet; failing to draw it costs the card its image, not the job."""
    from synthgen.preview import preview_png
    from synthgen.readers import Output

    try:
        data = preview_png(Output.from_markers(prepared.store, prepared.plan, markers))
        prepared.store.put_bytes(PREVIEW_FILE, data)
    except Exception as exc:  # noqa: BLE001 - the data is complete; the picture is a bonus
        log.warning("no preview in the dataset card: %s: %s", type(exc).__name__, exc)
        return None
    return PREVIEW_FILE


def remove_orphans(prepared: Prepared, keep: set[str]) -> None:
    """Data files that no marker names (lost races, crashed attempts) are deleted, and
    multipart uploads that killed writers left pending are aborted."""
    store = prepared.store
    for key in store.abort_uploads(DATA_DIR):
        log.info("aborted a pending multipart upload of %s", key)
    for name in store.list(DATA_DIR):
        rel = f"{DATA_DIR}/{name}"
        if rel not in keep:
            log.info("removing orphan %s", rel)
            store.delete(rel)


def index_table(prepared: Prepared, files: list[str]) -> pa.Table:
    """Every committed sample's metadata and its data file, no image bytes."""
    store = prepared.store
    columns = ["label", *METADATA_COLUMNS]
    tables = []
    for rel in files:
        with store.fs.open(store.path(rel), "rb") as f:
            table = read_parquet(f, columns)
        tables.append(table.append_column("file", pa.array([rel] * len(table), pa.string())))
    schema = shard_schema(prepared.plan.manifest.class_names, with_image=False)
    schema = schema.append(pa.field("file", pa.string()))
    return pa.concat_tables([t.cast(schema) for t in tables])
