"""Tests of synthgen.storage."""
