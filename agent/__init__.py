"""plumb node agent: standard library only, Python >= 3.9. Collects inventory and runs documents."""

__version__ = "0.1.0"
