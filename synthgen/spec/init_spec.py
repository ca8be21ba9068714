"""The `init` section (img2img of labeled real images) and what it asks of the other sections.

With `init` the classes are the source's: `classes` may pick a subset (names), rename them (a
mapping {source name: new name}) and give templates, never entries or a file of its own; a
prompt manifest has no place. `strength` takes what the sampler's ranges take (a number,
`{uniform: [lo, hi]}`, `{choice: [...]}`, spec/distributions.py), within [0, 1].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from synthgen.errors import UserError
from synthgen.spec.distributions import Choice, Uniform, parse_number, per_sample_schema
from synthgen.spec.strict import Strict

if TYPE_CHECKING:
    from synthgen.spec.manifest_spec import ClassManifest, PromptManifest


class InitSpec(Strict):
    """Variations of labeled real images: `per_image` of each, at a strength drawn per sample."""

    source: str = Field(min_length=1, description=(
        "The labeled images: an image folder (one sub-folder per class), a Parquet dataset (image "
        "and label columns), a synthgen output or `builtin:digits`; local or any fsspec URL."))
    strength: float | Uniform | Choice = Field(0.5, json_schema_extra=per_sample_schema(
        {"type": "number", "minimum": 0, "maximum": 1}), description=(
        "How far a variation moves from its source, in [0, 1]: 0 keeps the encoded source, 1 is "
        "plain generation; or a range or choice drawn per sample."))
    per_image: int = Field(1, gt=0, description="Variations of each source image.")
    resize: Literal["center-crop", "pad", "stretch"] = Field("center-crop", description=(
        "How a source image is fitted to the model's image size."))
    storage_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Handed to fsspec to read a URL source; secrets are stored redacted."))

    @field_validator("strength", mode="before")
    @classmethod
    def _strength(cls, value: Any) -> Any:
        try:
            return parse_number(value, limit=1.0)
        except ValueError as exc:
            raise ValueError(f"{exc}; strength is in [0, 1] (0 keeps the source, 1 ignores it)") from None


def check_init_sections(init: InitSpec | None, classes: ClassManifest | None,
                        prompts: PromptManifest | None) -> None:
    """Refuse what contradicts the classes' origin: the source's with init, the spec's without."""
    if init is None:
        if classes is not None and all(getattr(classes, k) is None for k in ("names", "entries", "source")):
            raise UserError("classes", None, "give exactly one of names, entries or source")
        if classes is not None and isinstance(classes.names, dict):
            raise UserError("classes.names", classes.names,
                            "a mapping renames the classes of an init source only; list the names")
        return
    if prompts is not None:
        raise UserError("prompts", "(given)", "with init the classes come from init.source; "
                                              "use classes.templates for prompts instead")
    if classes is not None and (classes.entries is not None or classes.source is not None):
        raise UserError("classes.entries" if classes.entries is not None else "classes.source",
                        "(given)", "with init the classes come from init.source; list names "
                                   "(a subset) or a mapping {source name: new name}")
