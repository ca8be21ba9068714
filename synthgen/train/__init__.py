"""`synthgen train`: small class-conditional diffusion models (such as the built-in digits),
saved as diffusers folders that `model.source` loads like any other."""
