"""Plan-time checks of a job against its model's configs: no weights are loaded."""

from __future__ import annotations

from typing import Any

from synthgen.errors import UserError
from synthgen.models.configs import ModelInfo
from synthgen.spec.plan import Plan
from synthgen.spec.scheduler_names import scheduler_problem


def check_plan_against_model(plan: Plan, info: ModelInfo | None) -> None:
    """Every check the configs allow; with no info (a model not on this machine), the sampler's."""
    sampler = plan.spec.sampler
    problem = scheduler_problem(sampler.scheduler, info.scheduler_config if info else None)
    if problem:
        raise UserError("sampler.scheduler", sampler.scheduler, problem)
    if info is None:
        return
    if sampler.guidance_scale != 1.0 and info.class_conditional and not info.guidable:
        raise UserError("sampler.guidance_scale", sampler.guidance_scale,
                        "this model has no null class for classifier-free guidance; set 1.0, "
                        "or name its null class id in synthgen.json (null_class)")
    _check_size(plan, info)
    _check_init(plan, info)
    if info.prompted:
        _check_prompts(plan, info)
    if info.class_conditional:
        _check_labels(plan, info)


def _check_size(plan: Plan, info: ModelInfo) -> None:
    for size_field in ("height", "width"):
        value = getattr(plan.spec.sampler, size_field)
        if value is None:
            continue
        if info.size_multiple is None and value != info.sample_size:
            raise UserError(f"sampler.{size_field}", value,
                            f"this model makes {info.sample_size}px images only; leave it unset")
        if info.size_multiple is not None and value % info.size_multiple:
            raise UserError(f"sampler.{size_field}", value,
                            f"must be a multiple of {info.size_multiple} for this model "
                            f"(its VAE shrinks images {info.vae_scale_factor}x); "
                            f"e.g. {max(1, round(value / info.size_multiple)) * info.size_multiple}")


def _check_init(plan: Plan, info: ModelInfo) -> None:
    """img2img needs an encoder of images into the model's space: unet, dit and sd all have one, a
    pipeline only when diffusers pairs it with an image-to-image pipeline."""
    if plan.spec.init is None:
        return
    if not info.img2img:
        raise UserError("model.source", plan.spec.model.source,
                        f"{info.pipeline} cannot vary init images (diffusers has no image-to-image "
                        "pipeline for it); with init use a unet, dit or sd model, or a pipeline with "
                        "an img2img counterpart (SDXL, SD3, FLUX, Kandinsky, ...)")
    if info.family == "unet" and info.channels not in (1, 3):
        raise UserError("model.source", plan.spec.model.source,
                        f"its UNet takes {info.channels}-channel images; init images are gray or RGB")


def _check_prompts(plan: Plan, info: ModelInfo) -> None:
    """A text-to-image model needs a prompt for every sample, and may refuse negative prompts."""
    captions = plan.spec.classes is not None and plan.spec.classes.captions is not None
    for i, entry in enumerate(plan.manifest.entries):
        if not entry.prompts and not captions:  # with captions, a caption is the prompt
            raise UserError("classes.templates", None,
                            f"class {entry.label_name!r} has no prompt and this is a text-to-image "
                            "model; add templates such as 'a photo of a {name}', or prompts per class")
        negative = entry.negative_prompt or list(entry.negative_prompts)
        if negative and not info.negative_prompts:
            section = "classes" if plan.spec.classes else "prompts"
            raise UserError(f"{section}[{i}].negative_prompt", negative,
                            f"{info.pipeline or 'this model'} takes no negative prompt; remove it")


def _check_labels(plan: Plan, info: ModelInfo) -> None:
    limit = info.num_class_embeds or 0
    section = "classes" if plan.spec.classes else "prompts"
    for i, entry in enumerate(plan.manifest.entries):
        class_id, _ = info.class_id(plan.model_label(entry), entry.label_name, entry.label)
        if class_id is None:
            raise UserError(f"{section}[{i}].name", entry.label_name,
                            f"not a class name in this model's id2label (its names: {_known_names(info)}); "
                            "use one of them, set model_label (its class id) per entry, or set "
                            "classes.label_mapping: position to map classes by position")
        if not 0 <= class_id < limit or class_id == info.null_class:
            raise UserError(f"{section}[{i}].model_label", class_id,
                            f"the model knows class ids 0..{limit - 1}"
                            + (f" (null class {info.null_class})" if info.null_class is not None
                               else "") + "; set model_label to one of them")


def _known_names(info: ModelInfo, shown: int = 12) -> str:
    names = [repr(n) for n in info.id2label.values()]
    return ", ".join(names[:shown]) + (f", ... ({len(names)} in all)" if len(names) > shown else "")


def label_table(plan: Plan, info: ModelInfo | None) -> list[dict[str, Any]]:
    """Each entry's label, name and model class id, with where the id came from: `model_label`,
    `id2label` or `position`; `prompt` for text-to-image models, `unknown` for a model not here."""
    rows = []
    for entry in plan.manifest.entries:
        if info is None or not info.class_conditional:
            class_id, source = None, "unknown" if info is None else "prompt"
        else:
            class_id, source = info.class_id(plan.model_label(entry), entry.label_name, entry.label)
            by_position = source == "model_label" and entry.model_label is None
            source = "position" if by_position else source
        rows.append({"label": entry.label, "name": entry.label_name, "model_class": class_id, "from": source})
    return rows
