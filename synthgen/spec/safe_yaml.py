"""The one YAML loader synthgen reads user files with: safe types, and no aliases.

An alias (`*a`) repeats a whole node by reference; nested ones expand exponentially, so a
455-byte file becomes gigabytes once built ("billion laughs"). A job spec or manifest never
needs them: they are refused, with the line they are on, before anything is built.
"""

from __future__ import annotations

from typing import Any

import yaml


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
