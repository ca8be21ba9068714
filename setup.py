"""The Python check, before anything else; every other setting is in pyproject.toml.

pip 23 resolves a local project's dependencies before it checks the project's Requires-Python,
so on Python 3.10 `pip install -e .` used to stop at "No matching distribution found for
diffusers>=0.42" (diffusers 0.42 needs 3.11). pip runs this file first (to ask the build for its
requirements), so an older Python stops here, with one line that names the minimum.
Keep MINIMUM equal to `requires-python` in pyproject.toml (tests/test_install.py checks it).
"""

import sys

MINIMUM = (3, 11)


def version_error(version=tuple(sys.version_info[:3])):
    """The one line for a Python older than MINIMUM (`version`, default this one), else None."""
    if tuple(version[:2]) >= MINIMUM:
        return None
    need, this = ".".join(map(str, MINIMUM)), ".".join(map(str, version))
    return (f"synthgen needs Python {need} or later; this is Python {this}. "
            f"Install it with a Python >= {need}.")


if __name__ == "__main__":
    error = version_error()
    if error:
        sys.exit(error)

    from setuptools import setup

    setup()
