"""`python -m reconciler` runs the plumb command line."""

from .cli import main

main()
