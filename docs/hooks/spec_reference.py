"""An mkdocs hook: the job spec reference page (reference/spec.md), written at build time from
`synthgen.spec.schema.job_schema()`, the JSON Schema of the pydantic models that validate a
spec. No copy of the page is in the tree, so it cannot drift from the models.

A hook rather than mkdocs-gen-files: mkdocs runs it itself (one dependency fewer), and the page
is one function of the schema that tests can call (`spec_page`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

Node = dict[str, Any]  # a JSON Schema node
PAGE = "reference/spec.md"
# The per-sample value forms (spec/distributions.py), written as a user writes them.
FORMS = {"Uniform": "`{uniform: [lo, hi]}`", "Choice": "`{choice: [...]}`"}
BOUNDS = {"minimum": "≥ {}", "exclusiveMinimum": "> {}", "maximum": "≤ {}", "exclusiveMaximum": "< {}"}

INTRO = """# Job spec

A job spec is a YAML file (or, in Python, a dict) with the sections below. A field left out
takes its default. Unknown keys are errors, as are a boolean where a number
belongs and non-finite numbers. On the command line, `--set section.field=value` overrides any
field (`--set sampler.steps=10`).

This page is generated from the pydantic models that validate a spec
(`synthgen/spec/job_spec.py` and the sections it holds), through the same JSON Schema that
`synthgen schema` prints and that is published as [job-spec.schema.json](job-spec.schema.json):
editors with a YAML language server complete and check a spec from it.

Where a field's type says so, it takes a value drawn per sample from its seed: {uniform}
(uniform in [lo, hi]) or {choice} (each listed value equally likely).
"""


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from synthgen.spec.schema import job_schema

    files.append(File.generated(config, PAGE, content=spec_page(job_schema())))
    return files


def spec_page(schema: Node) -> str:
    """The reference page's Markdown: the top-level fields, then each section and sub-section."""
    lines = [INTRO.format(**{name.lower(): form for name, form in FORMS.items()}), "## Top level", ""]
    lines += _table(schema, schema, "")
    for path, field in _sections(schema, schema, ""):
        model = _model(schema, field)
        lines += ["", f"## `{path}` {{#{_anchor(path)}}}", ""]
        text = field.get("description") or model.get("description")
        lines += [_one_line(text), ""] if text else []
        lines += _table(schema, model, path)
    return "\n".join(lines) + "\n"


def _sections(schema: Node, model: Node, prefix: str) -> Iterator[tuple[str, Node]]:
    """(dotted path, field) of every field whose value is a section (a model), depth first."""
    for name, field in model.get("properties", {}).items():
        inner = _model(schema, field)
        if inner is not None:
            path = f"{prefix}{name}{'[]' if _is_list(field) else ''}"
            yield path, field
            yield from _sections(schema, inner, path + ".")


def _table(schema: Node, model: Node, prefix: str) -> list[str]:
    rows = ["| Field | Type | Default | Allowed | Description |", "| --- | --- | --- | --- | --- |"]
    required = set(model.get("required", ()))
    for name, field in model.get("properties", {}).items():
        path = f"{prefix}{'.' if prefix else ''}{name}"
        cells = [f"`{name}`", _type(schema, field, path), _default(field, name in required),
                 _allowed(field), _one_line(field.get("description", ""))]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return rows


def _branches(field: Node) -> list[Node]:
    return field.get("anyOf") or field.get("oneOf") or [field]


def _model(schema: Node, field: Node) -> Node | None:
    """The section a field holds (directly, optionally, or as a list of them), else None."""
    for branch in _branches(field):
        if branch.get("type") == "array":  # a list of sections, or of sections or shorthands
            inner = _model(schema, branch.get("items", {}))
            if inner is not None:
                return inner
        ref = branch.get("$ref", "").rsplit("/", 1)[-1]
        if ref and ref not in FORMS:
            return object_form(schema["$defs"][ref])
    return None


def object_form(model: Node) -> Node:
    """A section's fields: the model itself, or the branch of it that has them (a section that
    also takes a shorthand, like `prompts: [...]`, is `anyOf` the section and the shorthand)."""
    return next((branch for branch in _branches(model) if "properties" in branch), model)


def _is_list(field: Node) -> bool:
    return any(branch.get("type") == "array" and
               any("$ref" in item for item in _branches(branch.get("items", {})))
               for branch in _branches(field))


def _type(schema: Node, field: Node, path: str) -> str:
    kinds = [_kind(branch, path) for branch in _branches(field) if branch.get("type") != "null"]
    return " or ".join(dict.fromkeys(kinds)) or "null"


def _kind(node: Node, path: str) -> str:
    if "anyOf" in node or "oneOf" in node:  # e.g. a list item that is a section or its shorthand
        return " or ".join(dict.fromkeys(_kind(branch, path) for branch in _branches(node)))
    ref = node.get("$ref", "").rsplit("/", 1)[-1]
    if ref:
        return FORMS.get(ref) or f"[`{path}`](#{_anchor(path)})"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    kind = node.get("type", "any")
    if kind == "array":
        items = node.get("items", {})
        if "$ref" in items:
            return f"list of [`{path}[]`](#{_anchor(path)})"
        return f"list of {_kind(items, path)}" if items else "list"
    if kind == "object":
        values = node.get("additionalProperties")
        return f"mapping of string to {_kind(values, path)}" if isinstance(values, dict) else "mapping"
    return kind


def _default(field: Node, required: bool) -> str:
    if required:
        return "**required**"
    if "default" in field:
        return f"`{json.dumps(field['default'])}`"
    if "$ref" in field:
        return "its fields' defaults"
    return {"object": "`{}`", "array": "`[]`"}.get(field.get("type", ""), "")


def _allowed(field: Node) -> str:
    """Choices and bounds, from the field and each of its alternatives."""
    found: list[str] = []
    for node in [field, *_branches(field)]:
        if "enum" in node:
            found.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"]))
        found += [text.format(_number(node[key])) for key, text in BOUNDS.items() if key in node]
        if node.get("minLength") == 1:
            found.append("not empty")
    return ", ".join(dict.fromkeys(found))


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _anchor(path: str) -> str:
    return path.replace("[]", "").replace(".", "-").replace("_", "-")


def _one_line(text: str) -> str:
    return " ".join(text.split())
