"""The end of a job: remove orphans, write index.parquet and the dataset card, then _SUCCESS."""

from __future__ import annotations

import logging
import time

import pyarrow as pa

from synthgen.output.card import dataset_card
from synthgen.output.catalog import Catalog, SuccessRecord
from synthgen.output.formats import format_of
from synthgen.output.preview import preview_png
from synthgen.output.shard_schema import METADATA_COLUMNS, DesignColumns, shard_schema
from synthgen.storage.layout import (
    CARD_FILE,
    COMMITS_DIR,
    DATA_DIR,
    FAILED_DIR,
    INDEX_FILE,
    PREVIEW_FILE,
    SUCCESS_FILE,
    data_shard,
    own_temp,
    shard_index,
)
from synthgen.storage.store import Store, table_bytes

log = logging.getLogger("synthgen")


def finalize(catalog: Catalog) -> None:
    store, plan = catalog.store, catalog.plan
    missing = [i for i in range(plan.num_shards) if i not in catalog.markers]
    if missing:
        raise RuntimeError(f"cannot finish: shards {missing[:10]} are not committed")
    files = [m.file for m in catalog.shards]
    remove_orphans(catalog, set(files))
    remove_temps(store)
    for name in store.list(FAILED_DIR):
        if shard_index(name) is not None:  # a foreign file there is left alone
            store.delete(f"{FAILED_DIR}/{name}")
    index = index_table(catalog, files)
    store.put_bytes(INDEX_FILE, table_bytes(index))
    preview = write_preview(catalog)
    store.put_bytes(CARD_FILE, dataset_card(catalog, index, preview).encode())
    store.put_bytes(SUCCESS_FILE, SuccessRecord(job_id=plan.job_id, samples=plan.total,
                                                shards=plan.num_shards, finished_at=time.time()).to_bytes())
    # the store's URI, not job.json's output.uri: a copied or moved output is finished where it is
    log.info("job %s complete: %d samples in %s", plan.job_id, plan.total, store.uri)


def write_preview(catalog: Catalog) -> str | None:
    """The card's contact sheet; failing to draw it costs the card its image, not the job."""
    try:
        catalog.store.put_bytes(PREVIEW_FILE, preview_png(catalog))
    except Exception as exc:  # noqa: BLE001 - the data is complete; the picture is a bonus
        log.warning("no preview in the dataset card: %s: %s", type(exc).__name__, exc)
        return None
    return PREVIEW_FILE


def remove_orphans(catalog: Catalog, keep: set[str]) -> None:
    """Data files that no marker names (lost races, crashed attempts) are deleted, and
    multipart uploads that killed writers left pending are aborted: only synthgen's own names
    (`data_shard`), so a foreign file under data/ is never touched."""
    store = catalog.store
    for key in store.abort_uploads(DATA_DIR):
        log.info("aborted a pending multipart upload of %s", key)
    for name in store.list(DATA_DIR):
        rel = f"{DATA_DIR}/{name}"
        if (data_shard(name) is not None and rel not in keep) or own_temp(name, DATA_DIR):
            log.info("removing orphan %s", rel)
            store.delete(rel)


def remove_temps(store: Store) -> None:
    """Temp files that killed local writers of synthgen's left (`own_temp`), wherever it writes."""
    for folder in ("", COMMITS_DIR, FAILED_DIR):
        for name in store.list(folder):
            if own_temp(name, folder):
                log.info("removing a killed writer's temp file %s", name)
                store.delete(f"{folder}/{name}" if folder else name)


def index_table(catalog: Catalog, files: list[str]) -> pa.Table:
    """Every committed sample's metadata and its data file, no image bytes."""
    store = catalog.store
    design = DesignColumns.of(catalog.plan)
    columns = ["label", *METADATA_COLUMNS, *design.names]
    tables = []
    for rel in files:
        with store.fs.open(store.path(rel), "rb") as f:
            table = format_of(rel).read_table(f, columns)
        tables.append(table.append_column("file", pa.array([rel] * len(table), pa.string())))
    schema = shard_schema(catalog.class_names, with_image=False, design=design)
    schema = schema.append(pa.field("file", pa.string()))
    return pa.concat_tables([t.cast(schema) for t in tables])
