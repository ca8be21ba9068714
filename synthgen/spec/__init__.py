"""What a job is: the typed spec, its overrides, the class or prompt manifest, and the plan
(sample rows, seeds, shards, job_id). Pure data: no model, no torch."""
