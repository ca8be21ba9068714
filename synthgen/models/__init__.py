"""Diffusion models behind one adapter interface; the family is read from the model's files."""

from synthgen.models.base import Adapter, ModelInfo
from synthgen.models.loader import inspect_model, load_adapter

__all__ = ["Adapter", "ModelInfo", "inspect_model", "load_adapter"]
