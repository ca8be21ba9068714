"""The layout is the architecture: stages as subpackages, the layers enforced, nothing hidden.

`lint-imports` (contracts in pyproject.toml) is run here too, so that a broken layer fails the
suite wherever it runs, not only in CI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "synthgen"
STAGES = {"storage", "spec", "output", "inputs", "models", "quality", "train", "engine", "commands", "cli"}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "builtin" not in p.parts)


def test_import_contracts_hold() -> None:
    script = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(script)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_stages_are_subpackages_and_the_top_level_is_small() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders >= STAGES, STAGES - folders
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "api.py", "errors.py"], top  # api: the Python API


def test_no_file_is_long() -> None:
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def test_function_local_imports_say_why() -> None:
    """A function-local import is allowed only to keep torch, diffusers, ray (or an optional or
    slow package) off a path, and the line, or the one above it, says so."""
    silent = []
    for path in modules():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and not _explained(lines, inner.lineno):
                    silent.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not silent, silent


def _explained(lines: list[str], lineno: int) -> bool:
    """A comment on the import, on another import of its block, or on the line above the block."""
    first = lineno - 1
    while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
        first -= 1
    last = lineno - 1
    while last + 1 < len(lines) and lines[last + 1].strip().startswith(("from ", "import ")):
        last += 1
    block = lines[max(0, first - 1) : last + 1]
    return any("#" in line for line in block)
