"""The captions model's folder, and the plan-time check that it is a causal language model."""

from __future__ import annotations

from pathlib import Path

from synthgen.errors import UserError
from synthgen.models.configs import read_json
from synthgen.models.sources import Fetch, NotCached, resolve_source
from synthgen.spec.job_spec import JobSpec, ModelSpec

FIELD = "classes.captions.model"
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def caption_model_folder(spec: JobSpec, fetch: Fetch) -> Path:
    """Resolved like model.source (path, hub id or URL, with model.storage_options)."""
    captions = spec.classes.captions
    source = ModelSpec(source=captions.model, revision=captions.revision,
                       storage_options=spec.model.storage_options)
    try:
        return resolve_source(source, fetch)[0]
    except NotCached:
        raise
    except UserError as exc:
        raise UserError(FIELD, captions.model, exc.fix) from None


def check_caption_model(spec: JobSpec, fetch: Fetch) -> None:
    """Refuse a captions model whose config names no causal LM (with fetch="cached", a model not
    on this machine is checked by the driver of `run`, which fetches its configs)."""
    if spec.classes is None or spec.classes.captions is None:
        return
    try:
        folder = caption_model_folder(spec, "configs" if fetch == "all" else fetch)
    except NotCached:
        return
    config = read_json(folder / "config.json")
    architectures = config.get("architectures") or []
    if not any(a.endswith(CAUSAL_SUFFIXES) for a in architectures):
        named = ", ".join(architectures) or config.get("_class_name") or "no architecture"
        raise UserError(FIELD, spec.classes.captions.model,
                        f"is not a causal language model (its config.json names {named}); give a "
                        "transformers model with a ...ForCausalLM architecture")
