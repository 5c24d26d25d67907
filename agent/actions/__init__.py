"""Step actions (SSM "plugins") the agent can run, by action name.

Owns the registry used by `agent.executor`. Every action module has `ACTION` (its name),
`prepare(inputs, values, params) -> spec` (validation; raises InputError) and
`run(spec, ctx) -> StepResult`; optionally `RAW_INPUTS` (inputs it substitutes itself,
as the script plugins do with runCommand) and `unsupported_reason()` (why it cannot run on
this node, which makes the step Skipped as SSM 2.2 does for other platforms' plugins).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterator, Mapping, Optional

# Action name -> module, imported on first use: `agent collect` (which imports
# agent.actions.versions) then never pays for the actions' imports.
_MODULES = {
    "aws:runShellScript": "shell", "aws:runPowerShellScript": "powershell", "plumb:package": "package",
    "plumb:patch": "patch", "plumb:file": "file", "plumb:directory": "directory", "plumb:service": "service",
    "plumb:user": "user", "plumb:sysctl": "sysctl",
}


class _Registry(Mapping):
    """A read-only mapping of action names to their modules, importing each on first use."""

    def __getitem__(self, action: str) -> ModuleType:
        module = importlib.import_module("agent.actions." + _MODULES[action])
        assert module.ACTION == action, (module.__name__, action)
        return module

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


ACTIONS: Mapping[str, ModuleType] = _Registry()

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
