"""Where an output lives: fsspec stores, S3 settings, create-only commits, the job lock, Parquet
bytes and secret redaction. The lowest layer: it imports nothing of synthgen but `errors`."""
