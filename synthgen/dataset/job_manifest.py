"""A job's manifest: its class or prompt manifest, or, with `init`, its source's listing."""

from __future__ import annotations

from synthgen.dataset.labeled_keys import list_labeled
from synthgen.spec.init_manifest import init_manifest
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest import Manifest, resolve_manifest


def job_manifest(spec: JobSpec) -> Manifest:
    """Read once on the driver and stored in job.json, so a resume never lists the source again."""
    if spec.init is None:
        return resolve_manifest(spec)
    return init_manifest(spec, list_labeled(spec.init.source, spec.init.storage_options))
