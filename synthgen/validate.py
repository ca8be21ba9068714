"""Plan-time checks of a job against its model's configs: no weights are loaded."""

from __future__ import annotations

from synthgen.errors import UserError
from synthgen.models import ModelInfo
from synthgen.plan import Plan


def check_plan_against_model(plan: Plan, info: ModelInfo) -> None:
    sampler = plan.spec.sampler
    if sampler.guidance_scale != 1.0 and info.class_conditional and not info.guidable:
        raise UserError("sampler.guidance_scale", sampler.guidance_scale,
                        "this model has no null class for classifier-free guidance; set 1.0, "
                        "or name its null class id in synthgen.json (null_class)")
    for size_field in ("height", "width"):
        value = getattr(sampler, size_field)
        if info.family == "unet" and value not in (None, info.sample_size):
            raise UserError(f"sampler.{size_field}", value,
                            f"this UNet makes {info.sample_size}px images; leave it unset")
    if info.class_conditional:
        _check_labels(plan, info)


def _check_labels(plan: Plan, info: ModelInfo) -> None:
    limit = info.num_class_embeds or 0
    section = "classes" if plan.spec.classes else "prompts"
    for i, entry in enumerate(plan.manifest.entries):
        class_id = info.model_label(entry.model_label, entry.label_name, entry.label)
        if not 0 <= class_id < limit or class_id == info.null_class:
            raise UserError(f"{section}[{i}].model_label", class_id,
                            f"the model knows class ids 0..{limit - 1}"
                            + (f" (null class {info.null_class})" if info.null_class is not None
                               else "") + "; set model_label to one of them")
