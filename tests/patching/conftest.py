"""Fixtures of the patching tests (their helpers live in patchkit.py, importable by name)."""

from patchkit import baseline, inventory  # noqa: F401  (fixtures)
