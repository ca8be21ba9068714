#!/usr/bin/env bash
# CI: the install promise on a second supported Python (docs/getting-started.md, "Install").
#
# The full suite runs on the default Python (3.11, .ci/run). This proves that synthgen also
# installs and works on another Python >= 3.11, within CI's time: a fresh venv, the README's
# install minus torch, then `import synthgen`, `synthgen plan` and the tests that need no torch.
#
# Why no torch: on Pythons other than 3.11 the registry's torch 2.13.0 is the CUDA build of several
# GB (only 3.11 has a CPU wheel on the CI machine's disk), and planning needs no torch (the
# driver's side never imports it: lint-imports and tests/cli check that). torchsde goes too (it
# needs torch). The dependency list is read from pyproject.toml, not copied here; a constraint
# `torch<0` makes pip refuse, rather than download, a torch that some other dependency asks for.
#
# Which Python: $SYNTHGEN_SMOKE_PYTHON if set, else the newest of 3.13 and 3.12 that runs, from
# the PATH or pyenv's versions folder (a pyenv shim for a version that is not active fails to run,
# so each candidate is run before it is used). None found: exit 1, saying what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
start=$SECONDS

say() { echo "smoke-python: $*"; }
fail() { echo "smoke-python: FAILED: $*" >&2; exit 1; }

# A Python that runs and is 3.11 or later but not the default Python's version: its version.
usable() {
    "$1" -c 'import sys; default = tuple(map(int, sys.argv[1].split(".")))
ok = sys.version_info[:2] >= (3, 11) and sys.version_info[:2] != default
print("%d.%d.%d" % sys.version_info[:3]) if ok else sys.exit(1)' "$default" 2>/dev/null
}
default=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

py=""
if [[ -n "${SYNTHGEN_SMOKE_PYTHON:-}" ]]; then
    usable "$SYNTHGEN_SMOKE_PYTHON" >/dev/null \
        || fail "SYNTHGEN_SMOKE_PYTHON=$SYNTHGEN_SMOKE_PYTHON does not run, or is not a Python >= 3.11" \
                "other than the default $default"
    py=$SYNTHGEN_SMOKE_PYTHON
else
    pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for v in 3.13 3.12; do
        for cand in "$(command -v "python$v" || true)" \
                    $(ls -d "$pyenv_root"/versions/"$v".*/bin/python 2>/dev/null | sort -rV); do
            if [[ -n "$cand" ]] && usable "$cand" >/dev/null; then py=$cand; break 2; fi
        done
    done
    [[ -n "$py" ]] || fail "no second Python found (python3.13 or python3.12 on the PATH, or under" \
        "$pyenv_root/versions): install one, e.g. \`pyenv install 3.12\`, or set SYNTHGEN_SMOKE_PYTHON"
fi
say "Python $(usable "$py") at $py (the full suite runs on the default Python $default)"

work=$(mktemp -d "${TMPDIR:-/tmp}/synthgen-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" -m venv "$work/venv"
vpy=$work/venv/bin/python

# The project's dependencies but torch and what needs it (torchsde, accelerate), and pytest + pytest-timeout from `test`.
"$vpy" - >"$work/requirements.txt" <<'EOF'
import re
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]


def name(requirement):
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


wanted = [r for r in project["dependencies"] if name(r) not in {"torch", "torchsde", "accelerate"}]
wanted += [r for r in project["optional-dependencies"]["test"] if name(r) in {"pytest", "pytest-timeout"}]
print("\n".join(wanted))
EOF
printf 'torch<0\n' >"$work/no-torch.txt"
say "installing $(paste -sd' ' "$work/requirements.txt")"
"$vpy" -m pip install -qq -r "$work/requirements.txt" -c "$work/no-torch.txt" \
    || fail "pip could not install the dependencies without torch (see above; ResolutionImpossible" \
            "means one of them now needs torch: rerun that pip line with -v to see which)"
"$vpy" -m pip install -qq --no-deps -e . || fail "pip install --no-deps -e . failed"
"$vpy" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is not None)' \
    || fail "torch got installed: this check must not pull the CUDA build"

# What a user does first, and the tests that need no torch (tests/conftest.py imports no torch at
# import time; with SYNTHGEN_TEST_WITHOUT_TORCH=1 the tests that need the tiny models skip).
(cd "$work" && "$vpy" -c 'import synthgen; print("smoke-python: import synthgen", synthgen.__version__, \
    "from", synthgen.__file__)')  # outside the clone: the installed package, not ./synthgen
"$work/venv/bin/synthgen" plan pipelines/digits.yaml >"$work/plan.txt" \
    || { cat "$work/plan.txt"; fail "synthgen plan pipelines/digits.yaml failed"; }
say "synthgen plan pipelines/digits.yaml:$(grep -E '^ *(job_id|samples|shards):' "$work/plan.txt" \
    | tr -s ' ' | paste -sd';')"
SYNTHGEN_TEST_WITHOUT_TORCH=1 "$vpy" -m pytest -q -p no:cacheprovider --basetemp "$work/pytest" \
    tests/spec tests/cli tests/test_install.py
say "passed in $((SECONDS - start)) s"
