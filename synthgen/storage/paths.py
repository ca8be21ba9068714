"""Path confinement: every path built from something read stays inside its root.

Remote model listings, commit markers' `file`, manifest rows, class names and prompts are data,
not trusted paths. `confine` is the one check they all pass through: a relative POSIX path of
plain segments, never `..`, `.`, an empty segment, an absolute path, a drive, a backslash or NUL.
"""

from __future__ import annotations

from synthgen.errors import UserError

_FORBIDDEN_CHARS = ("\\", "\x00")


def confine(rel: str, field: str = "path") -> str:
    """`rel` itself when it is a plain relative path under a root; otherwise a UserError."""
    problem = path_problem(rel)
    if problem:
        raise UserError(field, rel, f"{problem}; a path read from data must stay inside its folder")
    return rel


def path_problem(rel: object) -> str | None:
    """Why `rel` would leave its root (or is no path), or None when it is safe."""
    if not isinstance(rel, str) or not rel:
        return "is empty or not text"
    if any(c in rel for c in _FORBIDDEN_CHARS):
        return "holds a backslash or NUL"
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return "is an absolute path"
    if "://" in rel:
        return "is a URL"
    for segment in rel.split("/"):
        if segment in ("", ".", ".."):
            return f"has a {'empty' if not segment else repr(segment)} segment"
    return None


def relative_to(root: str, path: str, field: str = "path") -> str:
    """`path` (a listing's full path) relative to `root`, confined: the listing may lie."""
    root = root.rstrip("/")
    if not path.startswith(root + "/"):
        raise UserError(field, path, f"lies outside {root}; a listing must stay inside its folder")
    return confine(path[len(root) + 1:], field)
