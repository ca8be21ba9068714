"""The `synthgen` command line, one module per command group; `main` is the entry point."""

from synthgen.cli.app import main

__all__ = ["main"]
