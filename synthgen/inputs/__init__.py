"""What a job reads: labeled image sources (image folders, Parquet datasets, synthgen outputs,
builtin:digits), their listing into a job's manifest, and the init images of img2img jobs.

Above output/: a synthgen output is a labeled source too, read through its catalog."""
