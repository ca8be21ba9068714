"""Tests of synthgen.dataset."""
