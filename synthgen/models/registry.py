"""The family registry: which adapter a model folder needs, its info, and its loaded adapter.

Each family has a config reader (families/, no torch: the driver checks a job with it) and an
adapter module (adapters/, torch: loaded by workers only, by name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthgen.errors import UserError
from synthgen.models import dit, pipeline, sd, unet
from synthgen.models.adapter import Adapter
from synthgen.models.configs import ModelInfo, read_json
from synthgen.models.runtime import pick_device, pick_precision
from synthgen.models.sources import Fetch, resolve_source
from synthgen.models.trust import check_libraries
from synthgen.spec.job_spec import ModelSpec

# family -> (its config reader, the module holding its ADAPTER)
FAMILIES: dict[str, tuple[Callable[[Path, str, str], ModelInfo], str]] = {
    "unet": (unet.read_info, "synthgen.models.unet.adapter"),
    "dit": (dit.read_info, "synthgen.models.dit.adapter"),
    "sd": (sd.read_info, "synthgen.models.sd.adapter"),
    "pipeline": (pipeline.read_info, "synthgen.models.pipeline.adapter"),
}

# ModelInfo fields read from a model's JSON configs, and the types they must have.
INFO_TYPES: dict[str, Any] = {"sample_size": int, "channels": int, "num_class_embeds": (int, type(None)),
                              "null_class": (int, type(None)), "license": (str, type(None)),
                              "id2label": dict, "scheduler_config": dict}

UNET_PIPELINES = {"DDPMPipeline", "DDIMPipeline"}
DIT_TRANSFORMERS = {"DiTTransformer2DModel", "Transformer2DModel"}
SD_PIPELINES = {"StableDiffusionPipeline"}


def inspect_model(spec: ModelSpec, fetch: Fetch = "all") -> ModelInfo:
    """Resolve the source and read the model's configs, without loading weights."""
    path, revision = resolve_source(spec, fetch)
    check_libraries(read_json(path / "model_index.json"), spec.source, spec.trusted)
    family = spec.adapter or detect_family(path, spec.source)
    if family not in FAMILIES:
        raise UserError("model.adapter", family, f"unknown adapter; choose one of {', '.join(FAMILIES)}")
    try:
        info = FAMILIES[family][0](path, spec.source, revision)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise UserError("model.source", spec.source, f"a config file of the model has a value of "
                        f"the wrong type ({type(exc).__name__}: {exc}); fix the model's configs"
                        ) from None
    return check_info(info)


def check_info(info: ModelInfo) -> ModelInfo:
    """The configs' values have the types the job needs (a JSON file may hold anything)."""
    wrong = [name for name, kinds in INFO_TYPES.items()
             if isinstance(getattr(info, name), bool) or not isinstance(getattr(info, name), kinds)]
    if not all(isinstance(k, int) and isinstance(v, str) for k, v in info.id2label.items()):
        wrong.append("id2label")
    if wrong:
        values = ", ".join(f"{name}={getattr(info, name)!r}" for name in wrong)
        raise UserError("model.source", info.source, f"its configs give {values}: wrong types; "
                        "fix the model's config.json / model_index.json")
    return info


def load_adapter(info: ModelInfo, spec: ModelSpec) -> Adapter:
    """Load the weights once, onto the device this process should use, in the precision the
    spec asks for there: with bf16 autocast (a CPU with bf16 kernels) every `generate` call,
    whoever makes it, runs inside the precision's context."""
    device = pick_device(spec.device)
    precision = pick_precision(spec.dtype, device)
    module = importlib.import_module(FAMILIES[info.family][1])  # torch and diffusers: workers only
    adapter = module.ADAPTER(info, device, precision.weights)
    adapter.precision = precision
    if precision.autocast is not None:
        adapter.generate = precision.around(adapter.generate, device)
    return adapter


def detect_family(path: Path, source: str) -> str:
    """The adapter family, from the pipeline class and components in model_index.json."""
    index = read_json(path / "model_index.json")
    if index:
        return _family_from_index(index, source)
    config = read_json(path / "config.json")
    if config.get("_class_name") == "UNet2DModel":
        return "unet"
    raise UserError("model.source", source,
                    "no model_index.json or UNet2DModel config.json there; is it a diffusers model?")


def _family_from_index(index: dict[str, Any], source: str) -> str:
    name = index.get("_class_name", "")
    if not isinstance(name, str):
        raise UserError("model.source", source, f"model_index.json's _class_name is {name!r}, not "
                        "a class name; fix the model's model_index.json")
    parts = {k: v[1] for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[1]}
    if name in UNET_PIPELINES or parts.get("unet") == "UNet2DModel":
        return "unet"
    if name == "DiTPipeline" or (parts.get("transformer") in DIT_TRANSFORMERS
                                 and "vae" in parts and "text_encoder" not in parts):
        return "dit"
    if name in SD_PIPELINES:
        return "sd"
    if name.endswith("Pipeline"):
        return "pipeline"
    raise UserError("model.source", source, f"model_index.json names no pipeline ({name or 'none'}); "
                    "is it a diffusers model folder?")
