"""Tests of synthgen.models."""
