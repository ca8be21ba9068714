"""Docs that run: the code blocks of the getting-started page and of every guide run as a reader
would run them, one test per page (the convention: tests/helpers/docs_blocks.py). And the
generated spec reference describes every field of the spec."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from synthgen.spec.schema import job_schema
from tests.conftest import ROOT
from tests.helpers import faults
from tests.helpers.docs_blocks import DocsError, blocks, prepare_folder, run_page

DOCS = ROOT / "docs"
PAGES = [DOCS / "getting-started.md", *sorted((DOCS / "guides").glob("*.md"))]


def reader_env(ray_address: str | None = None) -> dict[str, str]:
    """A reader's environment: the `synthgen` command of this Python on PATH, no fault harness,
    and the suite's Ray (RAY_ADDRESS), so that a page's runs do not each start their own."""
    env = {key: value for key, value in os.environ.items() if key != faults.ENV}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_the_page_runs_as_shown(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    try:
        if not any(block.runs for block in blocks(page)):
            pytest.skip(f"{page.name} has no bash or python block to run")
        env = reader_env(request.getfixturevalue("ray_address"))
        run_page(page, prepare_folder(tmp_path / "reader", ROOT), env)
    except DocsError as exc:
        pytest.fail(str(exc), pytrace=False)


# The harness itself, on small pages written here ------------------------------------------

def write_page(folder: Path, text: str) -> Path:
    page = folder / "page.md"
    page.write_text(text)
    return page


def run_here(tmp_path: Path, text: str) -> int:
    return run_page(write_page(tmp_path, text), prepare_folder(tmp_path / "reader", ROOT), reader_env())


ORDERED_PAGE = """# A page

```bash
test -f pipelines/digits.yaml
echo one > order.txt
```

```python
from pathlib import Path
words = Path("order.txt").read_text().split()
```

<!-- not run: it would fail -->
```bash
exit 1
```

```console
$ touch console-ran
```

```yaml
name: not-run
```

```bash
echo two >> order.txt
synthgen --version > version.txt
```

```python
import subprocess, sys
assert sys.stdin.read() == "" and subprocess.run(["cat"], capture_output=True).stdout == b""
words += Path("order.txt").read_text().split()
Path("result.txt").write_text(" ".join(words))
```
"""


def test_blocks_run_in_order_in_one_folder_and_python_blocks_share_a_namespace(tmp_path: Path) -> None:
    assert run_here(tmp_path, ORDERED_PAGE) == 4
    reader = tmp_path / "reader"
    assert (reader / "result.txt").read_text() == "one one two"
    assert "synthgen" in (reader / "version.txt").read_text()
    assert not (reader / "console-ran").exists()


@pytest.mark.parametrize(("language", "code", "shown"), [
    ("bash", "echo before\nfalse\necho after", "before"),
    ("bash", "false | cat\necho after", "exit 1"),  # pipefail
    ("bash", "echo \"$NO_SUCH_VARIABLE_HERE\"\necho after", "NO_SUCH_VARIABLE_HERE"),  # -u
    ("python", "print('before')\n1 / 0\nprint('after')", "ZeroDivisionError"),
])
def test_a_failing_block_fails_the_page_naming_its_line_and_showing_its_output(
        tmp_path: Path, language: str, code: str, shown: str) -> None:
    page = f"# A page\n\n```bash\necho fine\n```\n\n```{language}\n{code}\n```\n"
    with pytest.raises(DocsError) as failed:
        run_here(tmp_path, page)
    message = str(failed.value)
    assert message.startswith(f"page.md:7: the {language} block failed")
    output = message.split("--- its output ---")[1]
    assert shown in output and "after" not in output


@pytest.mark.parametrize("mark", ["<!-- not run: -->", "<!-- not run -->", "<!-- not run:    -->"])
def test_a_block_marked_not_run_without_a_reason_fails_the_page(tmp_path: Path, mark: str) -> None:
    with pytest.raises(DocsError, match=r"page.md:3: `<!-- not run -->` needs a reason"):
        run_here(tmp_path, f"# A page\n\n{mark}\n```bash\necho fine\n```\n")


# The spec reference ------------------------------------------------------------------------

def spec_hook() -> Any:
    pytest.importorskip("mkdocs", reason="the docs extra builds the page: pip install -e '.[docs]'")
    spec = importlib.util.spec_from_file_location("spec_reference", DOCS / "hooks" / "spec_reference.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def schema_fields() -> list[tuple[str, dict[str, object]]]:
    """(model.field, property) for every property of the spec and of each of its sections."""
    schema, object_form = job_schema(), spec_hook().object_form
    forms = ("Uniform", "Choice")  # the per-sample value forms, described on the page itself
    models = [schema, *(object_form(model) for title, model in schema["$defs"].items()
                        if title not in forms)]
    return [(f"{model.get('title', '')}.{name}", field)
            for model in models for name, field in model["properties"].items()]


def test_every_spec_field_has_a_description() -> None:
    missing = [name for name, field in schema_fields() if not field.get("description")]
    assert not missing, f"add Field(description=...) to: {', '.join(missing)}"


def test_the_spec_reference_has_a_described_row_for_every_field() -> None:
    hook = spec_hook()
    rows = [line for line in hook.spec_page(job_schema()).splitlines() if line.startswith("| `")]
    assert len(rows) == len(schema_fields())
    assert all(not row.endswith("|  |") for row in rows), "a row without a description"
