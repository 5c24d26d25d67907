"""aws:runShellScript: write `_script.sh` into the step directory and run it with `sh`.

Owns the plugin's inputs (runCommand, workingDirectory, timeoutSeconds), the script
assembly (the AWS-RunShellScript `{{ commands }}` exception, then `agent.shellquote` for
every other reference) and the SSM exit-code contract: 0 Success, 168 Success and stop,
169 Failed and stop, 194 reboot requested, anything else Failed; timeout → TimedOut.

Deviation from SSM, on purpose: for 194 the agent does not reboot the node. The step is
reported SuccessAndReboot with `rebootRequested: true`, the remaining steps are skipped
(except a finallyStep) and the controller decides when to reboot and re-send the document.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from agent import document, shellquote
from agent.actions import process
from agent.actions.base import (ActionFailed, Context, Flow, InputError, Status, StepResult,
                                require)

ACTION = "aws:runShellScript"
RAW_INPUTS = ("runCommand",)
SCRIPT_NAME = "_script.sh"
DEFAULT_TIMEOUT, MIN_TIMEOUT, MAX_TIMEOUT = 3600, 5, 172800
EXIT_SUCCESS_STOP, EXIT_FAILURE_STOP, EXIT_REBOOT = 168, 169, 194
_INPUTS = ("runCommand", "workingDirectory", "timeoutSeconds", "id")


@dataclass(frozen=True)
class Spec:
    script: str
    working_directory: Optional[str]
    timeout: int
    env: Mapping[str, str]


def prepare(inputs: Mapping[str, Any], values: Mapping[str, document.Value],
            params: Mapping[str, document.ParamDef]) -> Spec:
    require(inputs, _INPUTS, required=("runCommand",))
    workdir = inputs.get("workingDirectory") or None
    if workdir is not None and not isinstance(workdir, str):
        raise InputError("workingDirectory: expected a string")
    script = build_script(inputs["runCommand"], values, params)
    return Spec(script, workdir, clamp_timeout(inputs.get("timeoutSeconds")),
                shellquote.environment(values))


def build_script(run_command: Any, values: Mapping[str, document.Value],
                 params: Mapping[str, document.ParamDef]) -> str:
    lines = [run_command] if isinstance(run_command, str) else run_command
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise InputError("runCommand: expected a list of strings (or one string)")
    return shellquote.render(with_expansions(lines, values, params), values) + "\n"


def with_expansions(lines: List[str], values: Mapping[str, document.Value],
                    params: Mapping[str, document.ParamDef]) -> List[Tuple[str, Optional[str]]]:
    """Pair each line with its verbatim expansion when it is exactly `{{ p }}`.

    That is the AWS-RunShellScript pattern (`{{ commands }}`): the value is meant to run.
    `agent.shellquote` uses the expansion only where a command can start; a parameter
    declared `interpolationType: ENV_VAR` never expands verbatim.
    """
    out: List[Tuple[str, Optional[str]]] = []
    for line in lines:
        ref = document.EXACT_REF.match(line)
        name = ref.group(1) if ref else None
        if name in values and not params[name].env_var:
            value = values[name]
            out.append((line, "\n".join(value) if isinstance(value, list) else value))
        else:
            out.append((line, None))
    return out


def clamp_timeout(raw: Any) -> int:
    """SSM's rule (pluginutil): an integer 5..172800, anything else 3600.

    Accepts a number (a JSON float is truncated, as the agent does) or a numeric string.
    """
    value: Optional[int] = None
    if isinstance(raw, float):
        value = int(raw)
    elif isinstance(raw, (int, str)) and not isinstance(raw, bool):
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = None
    if value is None or not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        return DEFAULT_TIMEOUT
    return value


def script_env(spec_env: Mapping[str, str], extra: Mapping[str, str]) -> Dict[str, str]:
    """The agent's environment minus inherited SSM_* names, plus the parameters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(extra)
    env.update(spec_env)
    return env


def run(spec: Spec, ctx: Context) -> StepResult:
    script_path = os.path.join(ctx.step_dir, SCRIPT_NAME)
    with open(script_path, "w", encoding="utf-8") as handle:
        handle.write(spec.script)
    os.chmod(script_path, 0o700)
    cwd = spec.working_directory or ctx.step_dir
    if not os.path.isdir(cwd):
        raise ActionFailed("workingDirectory %s does not exist or is not a directory" % cwd)
    outcome = process.run_script(["sh", script_path], cwd, script_env(spec.env, ctx.extra_env),
                                 spec.timeout, ctx)
    return outcome_result(outcome, spec.timeout)


def outcome_result(outcome: process.Outcome, timeout: int) -> StepResult:
    code = outcome.exit_code
    res = StepResult(Status.FAILED, code, outcome.stdout, outcome.stderr)
    if outcome.timed_out:
        res.status = Status.TIMED_OUT
        res.details = {"reason": "execution timed out after %d seconds" % timeout}
    elif outcome.cancelled:
        res.status = Status.CANCELLED
        res.details = {"reason": "cancelled"}
    elif code in (0, EXIT_SUCCESS_STOP):
        res.status = Status.SUCCESS
        res.flow = Flow.EXIT if code else Flow.CONTINUE
    elif code == EXIT_FAILURE_STOP:
        res.flow = Flow.EXIT
    elif code == EXIT_REBOOT:
        res.status, res.reboot, res.flow = Status.SUCCESS_AND_REBOOT, True, Flow.REBOOT
    if code in (EXIT_SUCCESS_STOP, EXIT_FAILURE_STOP, EXIT_REBOOT) and not res.details:
        res.details = {"reason": _FLOW_REASONS[code]}
    return res


_FLOW_REASONS = {
    EXIT_SUCCESS_STOP: "exit code 168: step succeeded and asked to skip the remaining steps",
    EXIT_FAILURE_STOP: "exit code 169: step failed and asked to skip the remaining steps",
    EXIT_REBOOT: "exit code 194: reboot requested; the agent does not reboot, the controller "
                 "decides",
}
