"""Test-only start-up hook: the fault harness (tests/helpers/faults.py) in every process the
tests start, without a line of fault code in synthgen.

Python imports `sitecustomize` at start-up from sys.path; `faults.child_env()` puts this folder
on the PYTHONPATH of CLI runs and Ray nodes (whose workers inherit it). Every Python process
there runs this, most never touch a Worker, so it stays cheap: unless SYNTHGEN_TEST_FAULT_PLAN
is set it does nothing, and otherwise it only adds a finder to sys.meta_path. That finder
imports nothing (no torch, no synthgen); it waits for `synthgen.engine.worker` to be imported by
the process itself, and wraps the Worker right after that module has run.
"""

import os
import sys

PLAN_ENV = "SYNTHGEN_TEST_FAULT_PLAN"
TARGET = "synthgen.engine.worker"


class _Installer:
    """A loader that runs the real one, then installs the harness on the module's Worker."""

    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        from tests.helpers import faults

        faults.install()

    def __getattr__(self, name):  # get_source, get_resource_reader...: the real loader's
        return getattr(self._inner, name)


class _WatchForWorker:
    """A meta-path finder for TARGET alone: the other finders find it, the loader is wrapped."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if finder is not self and find else None
            if spec is not None and spec.loader is not None:
                spec.loader = _Installer(spec.loader)
                return spec
        return None


if os.environ.get(PLAN_ENV):
    sys.meta_path.insert(0, _WatchForWorker())
