"""Diffusion models: the family registry, sources and cache, runtime (device, dtype, allocator),
the scheduler builders, the one reverse loop, the family adapters and the built-in model.

`families/` reads what a model's configs say (no torch, safe on the driver); `adapters/` load
the weights and run them (torch, in workers only)."""
