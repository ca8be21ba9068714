"""The built-in source's name, in a module that imports nothing, so that `synthgen train --help`
shows it as the default without loading the readers."""

BUILTIN_DIGITS = "builtin:digits"  # sklearn's load_digits(), read by inputs/labeled_sources.py
