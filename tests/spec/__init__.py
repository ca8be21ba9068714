"""Tests of synthgen.spec."""
