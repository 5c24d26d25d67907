"""aws:runPowerShellScript on Linux: runs only when `pwsh` is installed, else the step is Skipped.

Owns the PowerShell variant of the script plugin. Parameters are exported exactly as for
the shell plugin; every `{{ p }}` (outside the `{{ commands }}` exception) becomes
`${env:SSM_p}`, which PowerShell expands in bare arguments and "double-quoted" strings
without re-parsing the value, and leaves literal inside 'single quotes' (safe, but not
expanded: a documented limit). StringLists reference the JSON text in SSM_p. A line that
is exactly `{{ commands }}` expands verbatim unless it sits inside a here-string (@"..."@);
other multi-line strings are not tracked (no PowerShell lexer: a documented limit).
"""

from __future__ import annotations

import os
import shutil
from typing import Any, List, Mapping, Optional

from agent import document, shellquote
from agent.actions import process, shell
from agent.actions.base import ActionFailed, Context, InputError, StepResult, require

ACTION = "aws:runPowerShellScript"
RAW_INPUTS = ("runCommand",)
SCRIPT_NAME = "_script.ps1"
ARGS = ["-InputFormat", "None", "-Noninteractive", "-NoProfile", "-ExecutionPolicy",
        "unrestricted", "-f"]


def unsupported_reason() -> Optional[str]:
    if _pwsh() is None:
        return "aws:runPowerShellScript is not supported on this Linux node (pwsh not found)"
    return None


def _pwsh() -> Optional[str]:
    return shutil.which("pwsh") or shutil.which("powershell")


def prepare(inputs: Mapping[str, Any], values: Mapping[str, document.Value],
            params: Mapping[str, document.ParamDef]) -> shell.Spec:
    require(inputs, ("runCommand", "workingDirectory", "timeoutSeconds", "id"),
            required=("runCommand",))
    lines = inputs["runCommand"]
    lines = [lines] if isinstance(lines, str) else lines
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise InputError("runCommand: expected a list of strings (or one string)")
    return shell.Spec(render(lines, values, params), inputs.get("workingDirectory") or None,
                      shell.clamp_timeout(inputs.get("timeoutSeconds")),
                      shellquote.environment(values))


def render(lines: List[str], values: Mapping[str, document.Value],
           params: Mapping[str, document.ParamDef]) -> str:
    """A line that is exactly `{{ commands }}` expands verbatim, except inside a here-string."""
    def ref(match: Any) -> str:
        name = match.group(1)
        return "${env:%s}" % shellquote.env_name(name) if name in values else match.group(0)

    out, in_here_string = [], False
    for text, verbatim in shell.with_expansions(lines, values, params):
        if verbatim is not None and not in_here_string:
            out.append(verbatim)
            continue
        out.append(document.REF.sub(ref, text))
        if in_here_string:
            in_here_string = not text.startswith(('"@', "'@"))
        else:
            in_here_string = text.rstrip().endswith(('@"', "@'"))
    return "\n".join(out) + "\n"


def run(spec: shell.Spec, ctx: Context) -> StepResult:
    pwsh = _pwsh()
    if pwsh is None:
        raise ActionFailed("pwsh not found")
    path = os.path.join(ctx.step_dir, SCRIPT_NAME)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(spec.script)
    cwd = spec.working_directory or ctx.step_dir
    if not os.path.isdir(cwd):
        raise ActionFailed("workingDirectory %s does not exist or is not a directory" % cwd)
    outcome = process.run_script([pwsh] + ARGS + [path], cwd,
                                 shell.script_env(spec.env, ctx.extra_env), spec.timeout, ctx)
    return shell.outcome_result(outcome, spec.timeout)
