"""Loading a spec: YAML, `--set` overrides by dotted path, `--output`, then validation.

Every validation error becomes a `UserError` that names the field, the value and the fix, so
the CLI can print one line.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from synthgen.errors import UserError
from synthgen.spec.job_spec import JobSpec
from synthgen.storage.filesystem import MANIFEST_CAP, read_local
from synthgen.storage.redact import redact, redact_spec

# An override: `--set`'s "dotted.key=value" text, or a (dotted key, value) pair from Python.
Override = str | tuple[str, Any]


def load_spec(spec: str | Path | Mapping[str, Any], overrides: Iterable[Override] = (),
              output: str | None = None) -> JobSpec:
    """Read a YAML spec (or take a spec dict), apply overrides and `--output`, and validate it.
    A dict's relative paths are relative to the working directory, as a file's are to its folder."""
    if isinstance(spec, Mapping):
        data, base = copy.deepcopy(dict(spec)), Path.cwd()
    else:
        data, base = _read_yaml(Path(spec)), Path(spec).parent
    apply_overrides(data, overrides)
    if output is not None:
        set_dotted(data, "output.uri", output)
    _anchor_paths(data, base)
    return validate_spec(data)


def validate_spec(data: dict[str, Any]) -> JobSpec:
    """Validate a spec dict; the first error becomes one `UserError` line."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise _user_error(exc, data) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError("spec", str(path), "no such file; give the path of a YAML job spec")
    try:
        data = load_yaml(read_local(path, MANIFEST_CAP, "spec").decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UserError("spec", str(path), f"is not UTF-8 text (byte {exc.start}); save it as "
                        "UTF-8") from None
    except AliasRefused as exc:
        raise UserError("spec", str(path), str(exc)) from None
    except yaml.YAMLError as exc:
        raise UserError("spec", str(path), yaml_problem(exc)) from None
    if not isinstance(data, dict):
        raise UserError("spec", str(path), "the top level must be a mapping of fields")
    return data


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong, where, and how to fix it, from PyYAML's parts of the message."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown place"
    problem = getattr(exc, "problem", None) or ""
    if "'\\t'" in problem:  # PyYAML: found character '\t' that cannot start any token
        return f"a tab at {where}: YAML does not allow tabs for indentation; indent with spaces"
    return f"malformed YAML at {where}: {problem or exc}; fix the syntax"


def apply_overrides(data: dict[str, Any], overrides: Iterable[Override]) -> None:
    """`--set dotted.key=value` items, each value read as YAML (numbers, lists, ...), or pairs."""
    for item in overrides:
        set_dotted(data, *(parse_override(item) if isinstance(item, str) else item))


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UserError("--set", item, "write it as dotted.key=value, e.g. sampler.steps=10")
    try:
        return key.strip(), load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return key.strip(), raw


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError("--set", key, f"'{part}' is not a section; override a leaf field")
        node = child
    node[parts[-1]] = value


def _anchor_paths(data: dict[str, Any], base: Path) -> None:
    """Local manifest and model paths are relative to the spec's folder, like an include."""
    classes = data.get("classes")
    nested = {"captions": classes.get("captions")} if isinstance(classes, dict) else {}
    for section, key in (("classes", "source"), ("prompts", "source"), ("model", "source"),
                         ("filter", "classifier"), ("classes", "attributes"), ("prompts", "attributes"),
                         ("captions", "model"), ("init", "source")):
        node = nested[section] if section in nested else data.get(section)
        if not isinstance(node, dict) or not isinstance(node.get(key), str):
            continue
        value = node[key]
        if "://" in value or value.startswith(("builtin:", "~")) or Path(value).is_absolute():
            continue
        candidate = base / value
        # a model may be a hub id (org/name): kept as given unless the spec's folder holds it;
        # any other relative path is the spec folder's, and every message shows it resolved
        if candidate.exists() or section not in ("model", "filter", "captions") or not _hub_like(value):
            node[key] = str(candidate.resolve())


def _hub_like(value: str) -> bool:
    """Could name a hub repository: `org/name`, not `./x`, `../x/y` or `a/b/c`."""
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith(".")


def _user_error(exc: ValidationError, data: dict[str, Any]) -> UserError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    field = _dotted(loc) or "spec"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return UserError(field, _short(err["input"]), f"unknown field; {_known_fields(loc)}")
    value = err["input"] if loc else None
    if err["type"] in ("model_type", "dict_type") or isinstance(value, dict):
        value = _lookup(data, loc)
    return UserError(field, _short(value), message)


def _dotted(loc: list[str]) -> str:
    """`classes.entries[0].cnt`: list positions in brackets, as the user reads the spec."""
    return "".join(f"[{p}]" if p.isdigit() else (f".{p}" if i else p) for i, p in enumerate(loc))


def _known_fields(loc: list[str]) -> str:
    model: type[BaseModel] = JobSpec
    for part in loc[:-1]:
        if part not in model.model_fields:
            continue  # a list position, or a union member's tag
        model = _section_model(model.model_fields[part].annotation) or model
    return "valid fields here: " + ", ".join(model.model_fields)


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (`X | None`, `list[X]`, ...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _section_model(arg)
        if found:
            return found
    return None


def _lookup(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
    return data


def _short(value: Any) -> Any:
    """The value as the error line shows it: redacted (a section may hold storage_options with
    a secret in it), and cut to a readable length."""
    value = redact_spec({"value": value})["value"] if isinstance(value, (dict, list, str)) else value
    if isinstance(value, dict):
        value = redact(value)
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."


# The one YAML loader synthgen reads user files with: safe types, and no aliases.
#
# An alias (`*a`) repeats a whole node by reference; nested ones expand exponentially, so a
# 455-byte file becomes gigabytes once built ("billion laughs"). A job spec or manifest never
# needs them: they are refused, with the line they are on, before anything is built.
class AliasRefused(yaml.YAMLError):
    """A YAML alias: refused (see the module's docstring)."""


class _NoAliases(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise AliasRefused(f"YAML alias *{event.anchor} at line {event.start_mark.line + 1}: "
                               "aliases are not accepted (they can expand without bound); "
                               "write the value out")
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes) -> Any:
    """`text` as plain data (mappings, lists, strings, numbers), aliases refused."""
    return yaml.load(text, Loader=_NoAliases)  # noqa: S506 - a SafeLoader subclass
