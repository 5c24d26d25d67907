"""Vocabulary shared by every action: step statuses, results, errors, the run context.

Owns `Status` (SSM's plugin statuses and their worst-of merge order), `StepResult` (what
an action returns to `agent.executor`), the two error classes an action may raise
(`InputError` before anything runs, `ActionFailed` while running), `Context` and
`run_argv()`, the only way actions start programs (argv lists, never a shell).
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence


class Status(str, Enum):
    SKIPPED = "Skipped"
    SUCCESS = "Success"
    SUCCESS_AND_REBOOT = "SuccessAndReboot"
    PASSED_AND_REBOOT = "PassedAndReboot"
    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"


# SSM agent's merge order: the later in this list wins (contracts/model.go).
MERGE_ORDER = list(Status)


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=MERGE_ORDER.index, default=Status.SKIPPED)


class Flow(str, Enum):
    """What a step asks of the steps after it (exit codes 168/169/194, onSuccess/onFailure)."""

    CONTINUE = "continue"
    EXIT = "exit"
    REBOOT = "reboot"


class InputError(ValueError):
    """Inputs are invalid; reported before any step runs (statusDetails InvalidDocument)."""


class ActionFailed(RuntimeError):
    """The action could not do its job; the step is Failed with this message on stderr."""


@dataclass
class StepResult:
    status: Status
    exit_code: Optional[int]
    stdout: str = ""
    stderr: str = ""
    changed: Optional[bool] = None
    details: Dict[str, Any] = field(default_factory=dict)
    reboot: bool = False
    flow: Flow = Flow.CONTINUE


@dataclass
class Context:
    """What an action may use while it runs; built per step by the executor."""

    check: bool
    step_dir: str
    cancel: threading.Event
    on_output: Callable[[str, str], None]
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Completed:
    argv: List[str]
    returncode: int
    stdout: str
    stderr: str


def run_argv(argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
             stdin: Optional[str] = None, timeout: float = 3600) -> Completed:
    """Run a program from an argv list (no shell); a missing program raises ActionFailed."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              errors="replace", env=full_env, timeout=timeout)
    except FileNotFoundError:
        raise ActionFailed("command not found: %s" % argv[0])
    except subprocess.TimeoutExpired:
        raise ActionFailed("command timed out after %ss: %s" % (timeout, " ".join(argv)))
    return Completed(list(argv), proc.returncode, proc.stdout, proc.stderr)


def checked(argv: Sequence[str], env: Optional[Mapping[str, str]] = None) -> Completed:
    """run_argv() that turns a non-zero exit into ActionFailed with the program's stderr."""
    done = run_argv(argv, env=env)
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip())[-2000:]
        raise ActionFailed("%s exited %d: %s" % (" ".join(argv), done.returncode, message))
    return done


def require(inputs: Mapping[str, Any], allowed: Sequence[str],
            required: Sequence[str] = ()) -> None:
    """Unknown or missing input keys are InputErrors naming what is allowed."""
    unknown = sorted(set(inputs) - set(allowed))
    if unknown:
        raise InputError("unknown input(s) %s; allowed: %s"
                         % (", ".join(unknown), ", ".join(sorted(allowed))))
    missing = [k for k in required if inputs.get(k) in (None, "")]
    if missing:
        raise InputError("missing required input(s) %s" % ", ".join(missing))


def string_input(inputs: Mapping[str, Any], key: str, default: Optional[str] = None,
                 choices: Optional[Sequence[str]] = None) -> Optional[str]:
    value = inputs.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError("%s: expected a string, got %s" % (key, type(value).__name__))
    if choices is not None and value not in choices:
        raise InputError("%s: expected one of %s, got %r" % (key, ", ".join(choices), value))
    return value


def bool_input(inputs: Mapping[str, Any], key: str, default: bool) -> bool:
    """Booleans arrive as JSON booleans or, after substitution, as "true"/"false"."""
    value = inputs.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError("%s: expected true or false, got %r" % (key, value))


def result(changed: bool, summary: str, details: Dict[str, Any], check: bool) -> StepResult:
    """A successful built-in action: one summary line on stdout, details for the controller."""
    if check:
        details = dict(details, checkMode=True)
    return StepResult(Status.SUCCESS, 0, stdout=summary + "\n", changed=changed, details=details)
