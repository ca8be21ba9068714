"""Tests of synthgen.run."""
