"""The spec's sections that say what to generate: `classes` (a class manifest, with its captions)
or `prompts` (a prompt manifest). Their field names are the spec's contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from synthgen.spec.distributions import Choice, parse_text, per_sample_schema
from synthgen.spec.strict import MAX_COUNT, Strict

# What makes a template's prompt differ between classes: it must name one of these.
CLASS_PLACEHOLDERS = ("name", "synonym", "description", "caption")

# A negative prompt: text, or {choice: [...]} drawn per sample.
NegativePrompt = Annotated[str | Choice | None, BeforeValidator(parse_text),
                           Field(json_schema_extra=per_sample_schema({"type": "string"}))]


class CaptionsSpec(Strict):
    """LLM-written captions: `per_class` per class, generated once and committed to the output."""

    model: str = Field(min_length=1, description=(
        "A transformers causal language model: a local folder, a hub id or an fsspec URL."))
    revision: str | None = Field(None, description="The hub model's branch, tag or commit.")
    per_class: int = Field(gt=0, le=100_000, description=(
        "Captions written per class; sample k of a class takes caption k mod per_class."))
    instruction: str = Field("Write a one-line description of a photo of a {name}.", description=(
        "What each caption is asked for; it may name `{name}`, `{description}` and the class's axes."))
    max_new_tokens: int = Field(40, gt=0, le=2048, description="Tokens generated per caption at most.")
    temperature: float = Field(0.9, gt=0.0, description="The sampling temperature.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description=(
        "Nucleus sampling: draw from the likeliest tokens whose probabilities add up to top_p."))
    max_chars: int = Field(300, gt=0, description="Longer captions are dropped and drawn again.")
    max_draws: int = Field(4, ge=1, le=100, description=(
        "Candidates per caption, on average, before the job fails (per_class × max_draws in all); "
        "empty, over-long and duplicate captions are drawn again."))


class ClassEntry(Strict):
    SAME_DATA_AS_BEFORE = {"attributes": None, "description": None, "synonyms": None}
    name: str = Field(min_length=1, description="The class's name: its label name in the dataset.")
    count: int | None = Field(None, gt=0, le=MAX_COUNT, description="Images of this class; unset: "
                                                                    "`classes.count`.")
    model_label: int | None = Field(None, ge=0, description=(
        "A class-conditional model's class id for this class; unset: looked up by name in the "
        "model's id2label."))
    prompts: list[str] | None = Field(None, description="This class's own prompts, which replace the "
                                                        "templates for it.")
    negative_prompt: NegativePrompt = Field(None, description=(
        "This class's negative prompt, replacing `classes.negative_prompt`."))
    attributes: dict[str, Any] | None = Field(None, description=(
        "Attribute axes that add to or override `classes.attributes` for this class."))
    description: str | None = Field(None, description=(
        "Fills `{description}` in templates and caption instructions (a definition that "
        "disambiguates the name)."))
    synonyms: list[str] | None = Field(None, description=(
        "Fill `{synonym}`: each sample draws one of them or the name."))


class ClassManifest(Strict):
    SAME_DATA_AS_BEFORE = {"attributes": None, "attribute_mode": "random", "captions": None,
                           "label_mapping": "name"}
    count: int = Field(100, gt=0, le=MAX_COUNT, description="Images per class, unless an entry says "
                                                            "otherwise.")
    names: list[str] | dict[str, str] | None = Field(None, description=(
        "The class names, in label order. With `init`: a subset of the source's classes, or a "
        "mapping {source name: new name} that renames them."))
    entries: list[ClassEntry] | None = Field(None, description=(
        "The classes with settings of their own (give one of names, entries or source)."))
    source: str | None = Field(None, description=(
        "A file of classes (csv, jsonl, json, yaml, parquet, txt) with an entry's fields as columns: "
        "relative to the spec's folder, or any fsspec URL."))
    templates: list[str] | None = Field(None, description=(
        "Prompts for text-to-image models; each names `{name}`, `{synonym}`, `{description}` or "
        "`{caption}`, and may name axes. Sample k of a class takes template k mod their number."))
    negative_prompt: NegativePrompt = Field(None, description=(
        "What the images should not show (text-to-image models), for classes without their own."))
    label_mapping: Literal["name", "position"] = Field("name", description=(
        "How a class-conditional model's class ids are found: by name (an entry's model_label, "
        "else the model's id2label), or by position (label 0 is class id 0, ...)."))
    storage_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Handed to fsspec to read a URL `source` or attributes file; secrets are stored redacted."))
    attributes: dict[str, Any] | str | None = Field(None, description=(
        "Attribute axes that templates name as `{axis}`: a mapping {axis: [values]} (a value may be "
        "{value, weight}), or a file (yaml, json, csv, jsonl, parquet) of them."))
    attribute_mode: Literal["random", "cycle"] = Field("random", description=(
        "`random`: each sample draws one value per axis (weights make a value likelier); `cycle`: "
        "every template with every combination of values, in turn."))
    captions: CaptionsSpec | None = Field(None, description=(
        "Captions written by a language model, once per job, that fill `{caption}` (or are the "
        "prompt, without templates)."))

    @field_validator("templates")
    @classmethod
    def _templates_name_the_class(cls, templates: list[str] | None) -> list[str] | None:
        """A template naming nothing of its class would make the same prompt for every class."""
        for template in templates or ():
            if not any(f"{{{word}}}" in template for word in CLASS_PLACEHOLDERS):
                raise ValueError(f"template {template!r} has no {{name}}; write e.g. 'a photo of a {{name}}'")
        if templates is not None and not templates:
            raise ValueError("the template list is empty; give at least one, or leave it out")
        return templates

    @model_validator(mode="after")
    def _one_source(self) -> ClassManifest:
        """At most one here; exactly one unless the job has `init` (init_spec.py checks)."""
        given = [k for k in ("names", "entries", "source") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError("give exactly one of names, entries or source")
        if self.names is not None and not self.names or self.entries is not None and not self.entries:
            raise ValueError("the class list is empty; name at least one class")
        return self


class PromptEntry(Strict):
    prompt: str = Field(min_length=1, description="The prompt.")
    negative_prompt: NegativePrompt = Field(None, description="Its negative prompt; unset: "
                                                              "`prompts.negative_prompt`.")
    label: str | int | None = Field(None, description=(
        "Its label's name (a number is read as text); a prompt without one is labeled -1."))
    count: int | None = Field(None, gt=0, le=MAX_COUNT, description="Images of this prompt; unset: "
                                                                    "`prompts.count`.")


def _inline_list_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema shows the shorthand `PromptManifest._inline_list` reads: the section as a
    list of prompts, and an item as a plain string."""
    items = schema["properties"]["items"]["anyOf"][0]
    inline = {"type": "array", "items": {"anyOf": [{"type": "string"}, items["items"]]}}
    schema["properties"]["items"]["anyOf"][0] = inline
    section = dict(schema)
    schema.clear()
    schema.update(title=section.pop("title"), anyOf=[section, inline])


class PromptManifest(Strict):
    model_config = ConfigDict(json_schema_extra=_inline_list_schema)
    SAME_DATA_AS_BEFORE = {"attributes": None, "attribute_mode": "random"}
    items: list[PromptEntry] | None = Field(None, description=(
        "The prompts, inline (give one of items or source); `prompts: [...]`, a list, is short for "
        "`prompts: {items: [...]}`, and an item may be the prompt's text alone."))
    source: str | None = Field(None, description=(
        "A file of prompts (jsonl, csv, json, yaml, parquet, txt) with an item's fields as columns: "
        "relative to the spec's folder, or any fsspec URL."))
    count: int = Field(1, gt=0, le=MAX_COUNT, description="Images per prompt, unless its item says "
                                                          "otherwise.")
    negative_prompt: NegativePrompt = Field(None, description="The negative prompt of items without "
                                                              "their own.")
    storage_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Handed to fsspec to read a URL `source` or attributes file; secrets are stored redacted."))
    attributes: dict[str, Any] | str | None = Field(None, description=(
        "Attribute axes that prompts name as `{axis}`, given as `classes.attributes` is."))
    attribute_mode: Literal["random", "cycle"] = Field("random", description=(
        "`random`: each sample draws one value per axis; `cycle`: every combination in turn."))

    @model_validator(mode="before")
    @classmethod
    def _inline_list(cls, data: Any) -> Any:
        """`prompts: ["a cat", {prompt: "a dog", count: 3}]` is shorthand for `items:`."""
        if isinstance(data, list):
            return {"items": [{"prompt": p} if isinstance(p, str) else p for p in data]}
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            items = [{"prompt": p} if isinstance(p, str) else p for p in data["items"]]
            return {**data, "items": items}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> PromptManifest:
        if (self.items is None) == (self.source is None):
            raise ValueError("give exactly one of items (an inline list) or source (a file)")
        if self.items is not None and not self.items:
            raise ValueError("the prompt list is empty; give at least one prompt")
        return self
