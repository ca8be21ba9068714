"""synthgen: labeled synthetic image datasets from diffusion models, at cluster scale."""

__version__ = "0.1.0"
