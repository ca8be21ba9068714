"""Benchmarks: synthgen against the bare reverse loop and the tools users would pick instead.

`python -m benchmarks.run` runs them all in one go and prints the table (see docs/benchmarks.md).
Each contender runs as a whole process, timed from its start to its exit.
"""
