"""Limits that `synthgen ... --help` shows as defaults, in a module that imports nothing, so that
the help never waits for the spec's models."""

MAX_CELLS = 64  # cells of a sweep's grid, at most, unless --max-cells says otherwise
