"""The install promise: one minimum Python, stated alike by pyproject.toml, setup.py (which stops
an older Python with one line naming it, before pip resolves anything), the README, the
getting-started page and the dataset card. No venv is made here; CI's second-Python smoke check
(.ci/smoke-python.sh) installs for real. Needs no torch, so that smoke check runs it too."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import runpy
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from synthgen.output.card import _loading
from tests.conftest import ROOT

SETUP = ROOT / "setup.py"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def minimum() -> tuple[int, int]:
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec)
    assert found, f"requires-python should be one lower bound, not {spec!r}"
    return int(found[1]), int(found[2])


def test_setup_py_minimum_is_requires_python() -> None:
    assert runpy.run_path(str(SETUP))["MINIMUM"] == minimum()


def test_setup_py_names_the_minimum_and_this_python() -> None:
    version_error = runpy.run_path(str(SETUP))["version_error"]
    need = ".".join(map(str, minimum()))
    assert version_error((3, 10, 13)) == (f"synthgen needs Python {need} or later; this is Python 3.10.13. "
                                          f"Install it with a Python >= {need}.")
    assert version_error((*minimum(), 0)) is None and version_error((3, 13, 0)) is None
    assert version_error() is None  # this Python is supported


def test_setup_py_on_an_older_python_exits_with_that_one_line() -> None:
    """What pip shows a 3.10 user: setup.py, run as the build backend runs it, exits 1 with one
    line on stderr (here the Python pretends to be 3.10.13)."""
    pretend = ("import runpy, sys; sys.version_info = (3, 10, 13, 'final', 0); "
               f"runpy.run_path({str(SETUP)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", pretend], capture_output=True, text=True, cwd=ROOT)
    need = ".".join(map(str, minimum()))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"synthgen needs Python {need} or later; this is Python 3.10.13. Install it with a Python >= {need}."]


def test_readme_docs_and_card_state_the_minimum() -> None:
    need = ".".join(map(str, minimum()))
    readme = (ROOT / "README.md").read_text()
    top = readme.split("\n## ", 1)[0]
    assert f"Python {need} or later" in top and "3.10+" not in readme
    install = GETTING_STARTED.read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    assert f"**Python {need} or later**" in install and "3.10+" not in install
    assert any(f"Python {need} or later" in line for line in _loading("./out/digits", "parquet", ("train",)))


def test_the_distribution_name_is_ours_everywhere_and_no_install_line_fetches_another() -> None:
    """pyproject's name is synthgen.DISTRIBUTION (checked free on the registry: the
    getting-started page, "Install"); no install line in the README, the docs, cluster/ or .ci/
    names the registry's unrelated `synthgen`."""
    import synthgen

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == synthgen.DISTRIBUTION != "synthgen"
    assert project["scripts"] == {"synthgen": "synthgen.cli:main"}
    assert any(re.match(r"accelerate\b", dep) for dep in project["dependencies"])
    other = re.compile(r"pip3? install(?:[^\n`&;|]*?\s)?[\"']?synthgen(?![\w-])")  # one command
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in
             [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "cluster").iterdir(),
              *(ROOT / ".ci").iterdir()] if p.is_file()}
    texts["card"] = "\n".join(_loading("./out/digits", "parquet", ("train",)))
    assert {name: other.findall(text) for name, text in texts.items() if other.search(text)} == {}
    assert f'pip install "{synthgen.DISTRIBUTION}[readers]"' in texts["card"]
    install = texts[str(GETTING_STARTED.relative_to(ROOT))]
    assert f"pip index versions {synthgen.DISTRIBUTION}`" in install


def test_the_readers_extra_is_what_the_card_reads_with_and_the_tests_install_it() -> None:
    """The card's snippet imports datasets and duckdb (the docs also read with webdataset and
    pandas): `[readers]` brings them, the card says to install it, and `[test]` includes it."""
    import synthgen

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert sorted(re.match(r"[\w-]+", dep)[0] for dep in extras["readers"]) == \
        ["datasets", "duckdb", "pandas", "webdataset"]
    assert f"{synthgen.DISTRIBUTION}[readers]" in extras["test"]
    card = "\n".join(_loading("./out/digits", "parquet", ("train",)))
    imported = set(re.findall(r"^(?:import|from) (\w+)", card, re.MULTILINE)) - {"synthgen"}
    assert imported == {"datasets", "duckdb"} and imported <= set(re.findall(r"`(\w+)`", card))
    assert f'pip install "{synthgen.DISTRIBUTION}[readers,s3]"' in "\n".join(
        _loading("s3://bucket/digits", "parquet", ("train",)))


def test_the_wheel_ships_py_typed_the_license_and_the_one_version(tmp_path: Path) -> None:
    """PEP 561: a user's type checker reads synthgen's annotations only if the wheel holds
    synthgen/py.typed. PEP 639: the wheel names its license (SPDX) and holds the LICENSE text.
    The version is synthgen.__version__, read from the file's text: the copy's package raises on
    import, so a build that imported it would fail. Built from a copy, so that the build leaves
    nothing in the checkout, with this Python's own setuptools (no download): a venv without it
    (the second Python's smoke check) cannot build offline."""
    pytest.importorskip("setuptools", minversion="77", reason="no build backend for PEP 639 here")
    import synthgen

    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "synthgen", tmp_path / "synthgen", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "synthgen" / "__init__.py").open("a") as init:
        init.write("raise ImportError('the build imported synthgen')\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(tmp_path)], check=True, capture_output=True)
    wheel = zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl")))
    assert "synthgen/py.typed" in wheel.namelist()
    info = f"synthgen_images-{synthgen.__version__}.dist-info"
    metadata = wheel.read(f"{info}/METADATA").decode()
    assert f"\nVersion: {synthgen.__version__}\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata and "\nLicense-File: LICENSE\n" in metadata
    assert wheel.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()


def test_the_license_is_the_apache_license_2_0_pyproject_names() -> None:
    """The whole standard text, byte for byte: the sha256 of apache.org's LICENSE-2.0.txt."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    digest = hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest()
    assert digest == "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_the_installed_version_is_synthgens_and_synthgen_version_prints_it() -> None:
    import synthgen

    assert importlib.metadata.version(synthgen.DISTRIBUTION) == synthgen.__version__
    assert "version" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dynamic"]
    result = subprocess.run([sys.executable, "-m", "synthgen", "--version"], capture_output=True,
                            text=True, cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, f"synthgen, version {synthgen.__version__}\n")
