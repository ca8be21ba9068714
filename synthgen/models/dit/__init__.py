"""Class-conditional latent transformers (DiT: DiTTransformer2DModel or Transformer2DModel + VAE).

Images come at the size the model was trained for (its sample size times the VAE factor).
A sample's class id is its entry's `model_label`, else its class name looked up in the model's
id2label (model_index.json, as DiTPipeline saves it; any comma-separated synonym counts).
Guidance uses the model's null class, the id right after the last real class.
"""

from __future__ import annotations

from pathlib import Path

from synthgen.errors import UserError
from synthgen.models.configs import (
    ModelInfo,
    pipeline_index,
    read_json,
    scheduler_config,
    square,
    vae_scale_factor,
)

COMPONENTS = ("transformer", "vae")


def read_info(path: Path, source: str, revision: str) -> ModelInfo:
    index = pipeline_index(path, source, COMPONENTS)
    config = read_json(path / "transformer" / "config.json")
    classes = config.get("num_embeds_ada_norm")
    if not classes:
        raise UserError("model.source", source,
                        "its transformer is not class-conditional (no num_embeds_ada_norm in its config)")
    factor = vae_scale_factor(read_json(path / "vae" / "config.json"))
    extra = read_json(path / "synthgen.json")
    id2label = {int(k): str(v) for k, v in (index.get("id2label") or extra.get("id2label") or {}).items()}
    return ModelInfo(
        family="dit",
        path=path,
        source=source,
        revision=revision,
        scheduler_config=scheduler_config(path),
        sample_size=square(config.get("sample_size"), 32) * factor,
        channels=config.get("in_channels", 4),
        num_class_embeds=classes,
        null_class=classes,
        guidable=True,
        id2label=id2label,
        license=extra.get("license"),
        vae_scale_factor=factor,
        size_multiple=None,  # trained at one size, and DiT unpatchifies square grids only
        # With id2label, a class name the model does not know is a mistake, not index 0, 1, ...
        label_fallback=not id2label,
        pipeline=index.get("_class_name"),
    )
