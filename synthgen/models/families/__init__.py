"""What a model's config files say, one module per family, each a `read_info`; no torch."""
