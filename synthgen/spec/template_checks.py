"""Plan-time checks of what templates, prompts and the caption instruction name.

Each placeholder must exist for every entry that uses it: an attribute axis of that entry, or
one of name / synonym / description / caption, with {caption} only where captions are made and
{description} only where the class has one. A mistake is one `UserError` naming the field.
"""

from __future__ import annotations

from synthgen.errors import UserError
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest import Entry, Manifest
from synthgen.spec.sample_draws import PLACEHOLDER


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
