"""Package version ordering for planning: Debian (dpkg) and RPM, and `version:` constraints.

There is one implementation of version ordering in plumb, in the agent (which must also
decide on the node). It is pure standard-library code, so the controller uses it too,
through this module only (the single, declared exception to "the controller does not
import the agent" in pyproject's import-linter contracts).
"""

from __future__ import annotations

from agent.actions.versions import Constraint, compare_deb, compare_rpm, parse_constraint

__all__ = ["Constraint", "compare_deb", "compare_rpm", "parse_constraint", "comparator"]


def comparator(package_manager: str):
    return compare_rpm if package_manager in ("dnf", "yum", "rpm") else compare_deb
