"""An output as a dataset: the shard schema, the catalog (job.json + commit markers, read in one
place), readers, the torch loader, export, preview, the card, status, and the one reader of
labeled image sources."""
