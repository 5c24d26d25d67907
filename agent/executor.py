"""Run one SSM Command document on this node and stream the results as JSON lines.

Owns the `execute` protocol and the step flow. `main()` (called by `python3 -m agent
execute`) reads one JSON request from stdin; `execute()` is the same for callers holding a
dict. Everything is validated before the first step runs (document, parameter values,
every step's inputs): a problem yields a single `invocation_finished` with status Failed
and statusDetails InvalidDocument or InvalidParameters. Then steps run in order with SSM's
flow rules (preconditions, 168/169/194, onFailure/onSuccess, finallyStep, check mode),
each producing `step_started`, `step_output`* and `step_finished` events, and a final
`invocation_finished` merges the step statuses worst-of, as the SSM agent does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Tuple

from agent import actions, document, shellquote
from agent.actions.base import (ActionFailed, Context, Flow, InputError, Status, StepResult,
                                worst)

Emit = Callable[[Dict[str, Any]], None]

STDOUT_LIMIT, STDERR_LIMIT = 24000, 8000
TRUNCATION_MARKER = "--output truncated--"
EXIT_USAGE = 2
_DETAILS = {Status.SUCCESS: "Success", Status.FAILED: "Failed", Status.CANCELLED: "Cancelled",
            Status.TIMED_OUT: "ExecutionTimedOut", Status.SUCCESS_AND_REBOOT: "SuccessAndReboot"}


class RequestError(Exception):
    """stdin did not hold a JSON object: the protocol itself failed (exit code 2)."""


@dataclass
class Prepared:
    step: document.Step
    module: Any = None
    spec: Any = None
    skip: Optional[str] = None       # Skipped without running, and why
    fail: Optional[str] = None       # Failed without running, and why


@dataclass
class Invocation:
    steps: List[Prepared]
    check: bool
    stream: bool
    run_dir: str
    invocation_id: Optional[str]


# ---------------------------------------------------------------- entry points

def main(argv: Optional[List[str]] = None, stdin: Optional[IO[str]] = None,
         stdout: Optional[IO[str]] = None) -> int:
    """Read one request from stdin, stream events to stdout; 0 unless the input was unreadable."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__, file=stdout or sys.stdout)
        return 0
    emit = Emitter(stdout or sys.stdout)
    try:
        request = read_request(stdin or sys.stdin)
    except RequestError as err:
        emit(_invalid(document.INVALID_DOCUMENT, str(err), None))
        return EXIT_USAGE
    with _cancel_on_signals() as cancel:
        emit.cancel = cancel
        execute(request, emit, cancel)
    return 0


def execute(request: Mapping[str, Any], emit: Emit,
            cancel: Optional[threading.Event] = None) -> Dict[str, Any]:
    """Run a request already decoded; returns the invocation_finished event it emitted."""
    invocation_id = request.get("invocationId")
    invocation_id = invocation_id if isinstance(invocation_id, str) else None
    emit = _tagged(emit, invocation_id)
    own_dir = not request.get("workDir")
    try:
        invocation = prepare(request)
    except document.DocumentError as err:
        return _emit_failure(emit, err.details, str(err), invocation_id)
    except Exception as err:  # never leave the caller without an invocation_finished
        return _emit_failure(emit, "Failed", "agent error while preparing: %r" % err,
                             invocation_id)
    try:
        return run(invocation, emit, cancel or threading.Event())
    except Exception as err:
        return _emit_failure(emit, "Failed", "agent error while running: %r" % err,
                             invocation_id)
    finally:
        if own_dir:
            shutil.rmtree(os.path.dirname(invocation.run_dir), ignore_errors=True)


def read_request(stream: IO[str]) -> Dict[str, Any]:
    """One JSON object, on one line or pretty-printed over several; stops reading once whole."""
    buffered: List[str] = []
    for line in stream:
        buffered.append(line)
        if line.rstrip().endswith("}"):
            try:
                return _request_object(json.loads("".join(buffered)))
            except ValueError:
                continue
    text = "".join(buffered)
    if not text.strip():
        raise RequestError("no request on stdin")
    try:
        value = json.loads(text)
    except ValueError as err:
        raise RequestError("stdin is not a JSON object: %s" % err)
    return _request_object(value)


def _request_object(value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError("the request must be a JSON object, got %s" % type(value).__name__)
    return value


class Emitter:
    """Writes one JSON object per line and flushes it; a closed pipe cancels the run."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.cancel: Optional[threading.Event] = None
        self.lock = threading.Lock()

    def __call__(self, event: Dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=True) + "\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                if self.cancel is not None:
                    self.cancel.set()


class _cancel_on_signals:
    """SIGTERM/SIGINT cancel the running invocation (main thread only), then handlers return."""

    def __enter__(self) -> threading.Event:
        self.event = threading.Event()
        self.saved: List[Tuple[int, Any]] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.saved.append((sig, signal.signal(sig, lambda *_: self.event.set())))
        return self.event

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.saved:
            signal.signal(sig, handler)


def _tagged(emit: Emit, invocation_id: Optional[str]) -> Emit:
    if invocation_id is None:
        return emit
    return lambda event: emit(dict(event, invocationId=invocation_id))


def _emit_failure(emit: Emit, details: str, message: str,
                  invocation_id: Optional[str]) -> Dict[str, Any]:
    event = _invalid(details, message, None)
    emit(event)     # `emit` is already tagged with the invocation id
    return _invalid(details, message, invocation_id)


def _invalid(details: str, message: str, invocation_id: Optional[str]) -> Dict[str, Any]:
    event = {"event": "invocation_finished", "status": Status.FAILED.value,
             "statusDetails": details, "exitCode": -1, "rebootRequested": False,
             "message": message}
    if invocation_id is not None:
        event["invocationId"] = invocation_id
    return event


# ---------------------------------------------------------------- preparation

def prepare(request: Mapping[str, Any]) -> Invocation:
    if not isinstance(request.get("document"), dict):
        raise document.DocumentError(document.INVALID_DOCUMENT,
                                     "request.document: expected an SSM Command document object")
    flags = {k: request.get(k, d) for k, d in (("check", False), ("streamOutput", True))}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise document.DocumentError(document.INVALID_DOCUMENT,
                                         "request.%s: expected true or false" % key)
    doc = document.parse_document(request["document"])
    values = document.resolve_parameters(doc, request.get("parameters"))
    steps = [prepare_step(step, doc, values) for step in doc.steps]
    return Invocation(steps, flags["check"], flags["streamOutput"],
                      _run_dir(request), request.get("invocationId"))


def prepare_step(step: document.Step, doc: document.Document,
                 values: Mapping[str, document.Value]) -> Prepared:
    prep = Prepared(step)
    if not document.precondition_holds(step.precondition, values):
        operands = json.dumps(list(step.precondition or ()))
        prep.skip = "precondition StringEquals %s is false" % operands
        return prep
    platform = actions.platform_reason(step.action)
    prep.module = actions.lookup(step.action)
    if platform:
        setattr(prep, "skip" if step.precondition is None else "fail", platform)
    elif prep.module is None:
        prep.fail = "unsupported plugin %s: this agent runs %s" % (
            step.action, ", ".join(sorted(actions.ACTIONS)))
    else:
        prep.spec = _prepare_inputs(step, prep.module, doc, values)
    return prep


def _prepare_inputs(step: document.Step, module: Any, doc: document.Document,
                    values: Mapping[str, document.Value]) -> Any:
    raw = getattr(module, "RAW_INPUTS", ())
    inputs = {k: (v if k in raw else document.substitute(v, values))
              for k, v in step.inputs.items()}
    params = {p.name: p for p in doc.parameters}
    where = "mainSteps[%d] %r (%s)" % (step.index, step.name, step.action)
    try:
        return module.prepare(inputs, values, params)
    except InputError as err:
        raise document.DocumentError(document.INVALID_DOCUMENT, "%s: %s" % (where, err))
    except shellquote.ShellTemplateError as err:
        raise document.DocumentError(err.details, "%s: %s" % (where, err))


def _run_dir(request: Mapping[str, Any]) -> str:
    base = request.get("workDir")
    if base is not None and not isinstance(base, str):
        raise document.DocumentError(document.INVALID_DOCUMENT, "request.workDir: expected a path")
    base = os.path.abspath(base) if base else tempfile.mkdtemp(prefix="plumb-exec-")
    name = request.get("invocationId") or "invocation"
    return os.path.join(base, _safe_name(str(name)))


def _safe_name(name: str) -> str:
    return "_" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]


# ---------------------------------------------------------------- running

def run(inv: Invocation, emit: Emit, cancel: threading.Event) -> Dict[str, Any]:
    os.makedirs(inv.run_dir, mode=0o700, exist_ok=True)
    results: List[StepResult] = []
    stop: Optional[str] = None
    for prep in inv.steps:
        reason = _not_running(prep, stop, cancel, inv.check)
        if reason is not None:
            res = StepResult(Status.SKIPPED, None, details={"reason": reason})
            emit(_finished_event(prep, res, _now(), _now()))
        else:
            res = _run_step(prep, inv, emit, cancel)
        stop = stop or _stop_reason(prep.step, res, cancel)
        results.append(res)
    event = summary(results)
    emit(event)
    return event


def _not_running(prep: Prepared, stop: Optional[str], cancel: threading.Event,
                 check: bool) -> Optional[str]:
    if cancel.is_set():
        return "invocation cancelled"
    if stop is not None and not prep.step.finally_step:
        return stop
    if prep.skip is not None:
        return prep.skip
    if check and prep.fail is None and prep.step.action.startswith("aws:"):
        return "check mode"
    return None


def _run_step(prep: Prepared, inv: Invocation, emit: Emit, cancel: threading.Event) -> StepResult:
    step = prep.step
    emit({"event": "step_started", "step": step.name, "action": step.action})
    started = _now()
    if prep.fail is not None:
        res = StepResult(Status.FAILED, 1, stderr=prep.fail + "\n", details={"error": prep.fail})
    else:
        res = _call_action(prep, _context(prep, inv, emit, cancel))
    _apply_on_failure(step, res)
    emit(_finished_event(prep, res, started, _now()))
    return res


def _context(prep: Prepared, inv: Invocation, emit: Emit, cancel: threading.Event) -> Context:
    step = prep.step
    step_dir = os.path.join(inv.run_dir, "%02d%s" % (step.index, _safe_name(step.name)))
    os.makedirs(step_dir, mode=0o700, exist_ok=True)

    def on_output(stream: str, data: str) -> None:
        if inv.stream:
            emit({"event": "step_output", "step": step.name, "stream": stream, "data": data})

    env = {"PLUMB_STEP_NAME": step.name, "PLUMB_INVOCATION_ID": inv.invocation_id or ""}
    return Context(inv.check, step_dir, cancel, on_output, env)


def _call_action(prep: Prepared, ctx: Context) -> StepResult:
    try:
        return prep.module.run(prep.spec, ctx)
    except (ActionFailed, OSError) as err:
        message = str(err)
    except Exception:  # an agent bug must not lose the rest of the invocation
        message = "internal error in %s:\n%s" % (prep.step.action, traceback.format_exc())
    return StepResult(Status.FAILED, 1, stderr=message + "\n", details={"error": message})


def _apply_on_failure(step: document.Step, res: StepResult) -> None:
    if step.on_failure == "successAndExit" and res.status in (Status.FAILED, Status.TIMED_OUT):
        res.details = dict(res.details, originalStatus=res.status.value,
                           onFailure="successAndExit")
        res.status = Status.SUCCESS
        res.flow = Flow.EXIT


def _stop_reason(step: document.Step, res: StepResult, cancel: threading.Event) -> Optional[str]:
    """Why the steps after this one are skipped (finallyStep excepted), or None."""
    name = step.name
    if cancel.is_set() or res.status == Status.CANCELLED:
        return "invocation cancelled"
    if res.flow == Flow.REBOOT:
        return "step %s requested a reboot (exit code 194)" % name
    if res.flow == Flow.EXIT:
        return "step %s ended the document (%s)" % (name, res.details.get("onFailure")
                                                     or "exit code %s" % res.exit_code)
    if res.status in (Status.FAILED, Status.TIMED_OUT) and step.on_failure == "exit":
        return "step %s failed and has onFailure: exit" % name
    if res.status == Status.SUCCESS and step.on_success == "exit":
        return "step %s succeeded and has onSuccess: exit" % name
    return None


# ---------------------------------------------------------------- events

def cap(text: str, limit: int) -> Tuple[str, bool]:
    """SSM's console cap: the first `limit` characters, then the truncation marker."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + "\n" + TRUNCATION_MARKER, True


def _finished_event(prep: Prepared, res: StepResult, started: str, finished: str) -> Dict[str, Any]:
    stdout, out_cut = cap(res.stdout, STDOUT_LIMIT)
    stderr, err_cut = cap(res.stderr, STDERR_LIMIT)
    event: Dict[str, Any] = {
        "event": "step_finished", "step": prep.step.name, "action": prep.step.action,
        "status": res.status.value, "exitCode": res.exit_code,
        "stdout": stdout, "stderr": stderr,
        "stdoutTruncated": out_cut, "stderrTruncated": err_cut,
        "changed": res.changed, "details": res.details, "rebootRequested": res.reboot,
        "startedAt": started, "finishedAt": finished,
    }
    if out_cut:
        event["fullStdout"] = res.stdout
    if err_cut:
        event["fullStderr"] = res.stderr
    return event


def summary(results: List[StepResult]) -> Dict[str, Any]:
    merged = worst([r.status for r in results])
    status = Status.SUCCESS if merged == Status.SKIPPED else merged
    decider = next((r for r in results if r.status == merged), None)
    code = decider.exit_code if decider is not None and decider.exit_code is not None else 0
    return {"event": "invocation_finished", "status": status.value,
            "statusDetails": _DETAILS.get(status, status.value), "exitCode": code,
            "rebootRequested": any(r.reboot for r in results)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
