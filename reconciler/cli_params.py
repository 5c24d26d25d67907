"""`plumb param ...` and `plumb secret ...` (being written)."""
