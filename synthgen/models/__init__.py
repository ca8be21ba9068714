"""Diffusion models: the family registry, sources and cache, runtime (device, dtype, allocator),
the scheduler builders, the one reverse loop, the built-in model, and one folder per family.

A family's folder holds its config reader in `__init__.py` (what the model's configs say: no
torch, safe on the driver) and its `adapter.py` (loads the weights and runs them: torch, in
workers only, imported by name through registry.py)."""
