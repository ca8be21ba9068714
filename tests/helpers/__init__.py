"""Test-only helpers (the fault harness); nothing here ships with synthgen."""
