"""Loaded models, one module per family, each exposing `ADAPTER`; torch and diffusers live here."""
