"""What a job writes and how it is read back: the shard schema and formats, job.json, the catalog
(job.json + commit markers, read in one place), status, readers, verify and repair, finalize
(index, card, preview, _SUCCESS), export, show and the torch loader.

Imports storage/ and spec/ only: an output is read without models, Ray or torch."""
