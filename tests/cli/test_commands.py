"""The command line: each command's module loads when that command runs, and the driver's side
never pays for torch, diffusers, Ray or scikit-learn while planning."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from synthgen.cli import main
from synthgen.cli.app import COMMANDS
from tests.conftest import ROOT

PROBE = ("import sys; from synthgen.cli import main; main(sys.argv[1:], standalone_mode=False); "
         "print(sorted(m for m in ('torch', 'diffusers', 'ray', 'sklearn', 'synthgen.cli.training', "
         "'synthgen.cli.cluster', 'synthgen.engine.executor') if m in sys.modules))")


def loaded_by(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    return out.splitlines()[-1]


def test_planning_loads_no_torch_ray_or_other_commands() -> None:
    """`synthgen plan` used to pay 1.6 s for torch; now it loads the driver and nothing heavier."""
    assert loaded_by("plan", str(ROOT / "pipelines/digits.yaml")) == "[]"


def test_status_of_a_missing_output_loads_nothing_heavy(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "synthgen.cli", "status", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "holds no synthgen job" in result.stderr


def test_every_command_is_listed_and_loads() -> None:
    help_text = CliRunner().invoke(main, ["--help"]).output
    for name in COMMANDS:
        if name != "run-submitted":  # hidden: the driver of a submitted job
            assert f"  {name} " in help_text, name
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0, name


HELP_PROBE = """
import sys
from synthgen.cli import main
from synthgen.cli.app import COMMANDS
for args in (["--help"], *([name, "--help"] for name in COMMANDS)):
    try:
        main(args)
    except SystemExit as done:
        assert done.code == 0, (args, done.code)
print(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY))
"""
# What took `synthgen --help` 4-6 s: every command's module imported these to list its options.
HEAVY = ("torch", "diffusers", "ray", "pyarrow", "sklearn", "pandas", "numpy", "pydantic", "rich")


def test_help_of_every_command_loads_nothing_heavy() -> None:
    """Help is Click and synthgen's own small modules: what a command runs loads when it runs."""
    probe = f"HEAVY = {HEAVY!r}" + HELP_PROBE
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_python_dash_m_synthgen_is_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "synthgen", "--version"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0 and "version" in result.stdout
