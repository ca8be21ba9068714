"""What one sample draws: its prompt's placeholders, attribute values, sampler values, caption.

A pure function of (entry, k = the sample's index within its entry, the sample's seed, the
spec, the job's captions), so a sample draws the same after a retry, a resume or on another
worker. Every random draw is one number

    u(seed, key) = (int.from_bytes(blake2b(f"{seed}:{key}", digest_size=8), "big") >> 11) / 2**53

in [0, 1), where `seed` is the sample's own seed (`sample_seed(job_seed, sample_id)`, the seed of
its first draw) and `key` names what is drawn: the axis name for an attribute, `synonym`,
`negative_prompt`, `sampler.guidance_scale`, `sampler.steps`, `init.strength`. A uniform range [lo, hi] takes
lo + u * (hi - lo); a choice of values with weights w takes the first value whose running sum of
weights exceeds u * sum(w). `attribute_mode: cycle` draws no attribute: sample k takes combination
(k // T) mod C (T templates, C combinations, the last axis changing fastest), so that T * C
samples cover every template with every combination. Templates are taken in turn (k mod T) and
caption k mod N of the class fills `{caption}` (N captions per class). With `init`, sample k
varies the class's source image k // per_image (the index within its class, never the sample_id,
so the assignment holds in any output order).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.distributions import Choice, Uniform
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest import Entry, Manifest

PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Draws:
    """The per-sample values of one sample (None where the job has no such thing)."""

    prompt: str | None
    template: str | None
    negative_prompt: str | None
    guidance_scale: float
    steps: int
    attributes: dict[str, str] | None
    caption_id: int | None
    init_id: str | None = None  # init (img2img): the source image's key, its class there, strength
    init_label: str | None = None
    strength: float | None = None


def unit(seed: int, key: str) -> float:
    """The draw u(seed, key) in [0, 1): 53 bits of blake2b, as the module docstring says."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / 2**53


def pick(values: Sequence[Any], u: float, weights: Sequence[float] | None = None) -> Any:
    """The value whose share of the weights holds u (equal weights when none are given)."""
    weights = weights or [1.0] * len(values)
    target, running = u * sum(weights), 0.0
    for value, weight in zip(values, weights, strict=True):
        running += weight
        if target < running:
            return value
    return values[-1]


def draw_value(form: Any, seed: int, key: str) -> Any:
    """A fixed value as it is; a Uniform or a Choice drawn with u(seed, key)."""
    if isinstance(form, Uniform):
        lo, hi = form.uniform
        return lo + unit(seed, key) * (hi - lo)
    if isinstance(form, Choice):
        return pick(form.choice, unit(seed, key))
    return form


def draw_sample(entry: Entry, k: int, seed: int, spec: JobSpec,
                captions: Mapping[int, Sequence[str]] | None = None) -> Draws:
    """Everything sample k of `entry` draws from its seed (see the module docstring)."""
    sampler = spec.sampler
    template = entry.templates[k % len(entry.templates)] if entry.templates else None
    prompt = entry.prompts[k % len(entry.prompts)] if entry.prompts else None
    attributes = _attributes(entry, k, seed, _mode(spec))
    caption_id, caption = _caption(entry, k, spec, captions)
    if prompt is None and caption is not None:
        prompt = caption  # with captions and no templates, the caption is the prompt
    values = dict(attributes or {})
    if entry.label_name is not None and spec.classes is not None:
        synonyms = (entry.label_name, *entry.synonyms)
        values.update(synonym=pick(synonyms, unit(seed, "synonym")), description=entry.description or "")
        if caption is not None:
            values["caption"] = caption
    negative = pick(entry.negative_prompts, unit(seed, "negative_prompt")) if entry.negative_prompts \
        else entry.negative_prompt
    return Draws(
        prompt=fill(prompt, values) if prompt is not None else None,
        template=template or None,
        negative_prompt=negative,
        guidance_scale=float(draw_value(sampler.guidance_scale, seed, "sampler.guidance_scale")),
        steps=int(draw_value(sampler.steps, seed, "sampler.steps")),
        attributes=attributes,
        caption_id=caption_id,
        **_init(entry, k, seed, spec),
    )


def _init(entry: Entry, k: int, seed: int, spec: JobSpec) -> dict[str, Any]:
    """An init job's sample: variation k % per_image of its class's image k // per_image."""
    if spec.init is None or not entry.inits:
        return {}
    return {"init_id": entry.inits[k // spec.init.per_image], "init_label": entry.init_label,
            "strength": float(draw_value(spec.init.strength, seed, "init.strength"))}


def fill(text: str, values: Mapping[str, str]) -> str:
    """`{word}` placeholders replaced by their values; others are left as written (the plan
    refuses unknown ones in templates: spec/sample_draws.py)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _mode(spec: JobSpec) -> str:
    section = spec.classes or spec.prompts
    return section.attribute_mode if section is not None else "random"


def _attributes(entry: Entry, k: int, seed: int, mode: str) -> dict[str, str] | None:
    if not entry.attributes:
        return None
    if mode == "random":
        return {name: pick([v for v, _ in values], unit(seed, name), [w for _, w in values])
                for name, values in entry.attributes}
    combination = k // max(1, len(entry.prompts))
    chosen: dict[str, str] = {}
    for name, values in reversed(entry.attributes):
        combination, digit = divmod(combination, len(values))
        chosen[name] = values[digit][0]
    return {name: chosen[name] for name, _ in entry.attributes}


def _caption(entry: Entry, k: int, spec: JobSpec,
             captions: Mapping[int, Sequence[str]] | None) -> tuple[int | None, str | None]:
    """(caption_id, its text) for a job with captions; the text is None until they exist."""
    if spec.classes is None or spec.classes.captions is None:
        return None, None
    texts = (captions or {}).get(entry.label)
    n = len(texts) if texts else spec.classes.captions.per_class
    return k % n, (texts[k % n] if texts else None)


# Plan-time checks of what templates, prompts and the caption instruction name.
#
# Each placeholder must exist for every entry that uses it: an attribute axis of that entry, or
# one of name / synonym / description / caption, with {caption} only where captions are made and
# {description} only where the class has one. A mistake is one `UserError` naming the field.
def check_placeholders(spec: JobSpec, manifest: Manifest) -> None:
    """Refuse a template, prompt or instruction naming what does not exist."""
    section = spec.classes or spec.prompts
    for i, entry in enumerate(manifest.entries):
        if spec.classes is not None:
            for template in entry.templates:
                _check(template, entry, spec, "classes.templates")
            if any(not t for t in entry.templates):  # the entry's own prompts
                for prompt in entry.prompts:
                    _check(prompt, entry, spec, f"classes[{i}].prompts")
            if spec.classes.captions is not None:
                _check(spec.classes.captions.instruction, entry, spec, "classes.captions.instruction",
                       caption=False)
        elif spec.prompts is not None and spec.prompts.attributes is not None:
            for prompt in entry.prompts:
                _check(prompt, entry, spec, f"prompts[{i}].prompt")
        weighted = any(w != 1.0 for _, vs in entry.attributes for _, w in vs)
        if section is not None and section.attribute_mode == "cycle" and weighted:
            field = "classes.attributes" if spec.classes else "prompts.attributes"
            raise UserError(field, "weight", "cycle mode takes every combination in turn and ignores no "
                            "value; remove the weights, or use attribute_mode: random")


def _check(text: str, entry: Entry, spec: JobSpec, field: str, caption: bool = True) -> None:
    axes = {name for name, _ in entry.attributes}
    known = axes | ({"name", "synonym", "description", "caption"} if spec.classes else set())
    for word in PLACEHOLDER.findall(text):
        if word not in known or (word == "caption" and not caption):
            where = f" for class {entry.label_name!r}" if entry.label_name and axes else ""
            names = ", ".join(f"{{{n}}}" for n in sorted(known - ({"caption"} if not caption else set())))
            raise UserError(field, text, f"{{{word}}} is no axis or placeholder{where}; "
                            f"use one of {names or '(none: define attributes)'}")
        if word == "caption" and spec.classes is not None and spec.classes.captions is None:
            raise UserError(field, text, "{caption} needs a classes.captions section that writes the "
                            "captions; add one, or remove {caption}")
        if word == "description" and not entry.description:
            raise UserError(field, text, f"class {entry.label_name!r} has no description for "
                            "{description}; give every class one (entries[].description)")
