"""Tests of synthgen.quality."""
