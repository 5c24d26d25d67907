"""plumb node agent: standard library only, Python >= 3.9. Collects inventory and runs documents."""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def is_resident() -> bool:
    """True in the resident agent (agent/resident.py): a process that outlives its sessions,
    so what it keeps in memory is worth keeping."""
    return "agent.resident" in sys.modules
