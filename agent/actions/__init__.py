"""Step actions (SSM "plugins") the agent can run, by action name.

Owns the registry used by `agent.executor`. Every action module has `ACTION` (its name),
`prepare(inputs, values, params) -> spec` (validation; raises InputError) and
`run(spec, ctx) -> StepResult`; optionally `RAW_INPUTS` (inputs it substitutes itself,
as the script plugins do with runCommand) and `unsupported_reason()` (why it cannot run on
this node, which makes the step Skipped as SSM 2.2 does for other platforms' plugins).
"""

from __future__ import annotations

from types import ModuleType
from typing import Dict, Optional

from agent.actions import (directory, file, package, patch, powershell, service, shell, sysctl,
                           user)

ACTIONS: Dict[str, ModuleType] = {
    module.ACTION: module
    for module in (shell, powershell, package, patch, file, directory, service, user, sysctl)
}

# SSM plugins that exist only for Windows: a 2.2 document skips them on Linux.
WINDOWS_ONLY = ("aws:applications", "aws:psModule", "aws:updateAgent", "aws:cloudWatch")


def lookup(action: str) -> Optional[ModuleType]:
    return ACTIONS.get(action)


def platform_reason(action: str) -> Optional[str]:
    """Why `action` cannot run on this Linux node, or None when it can (or is unknown)."""
    if action in WINDOWS_ONLY:
        return "%s is a Windows-only plugin" % action
    module = ACTIONS.get(action)
    check = getattr(module, "unsupported_reason", None)
    return check() if check else None
