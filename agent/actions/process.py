"""Run one script process for a step: own process group, output to files, timeout, cancel.

Owns the mechanics shared by aws:runShellScript and aws:runPowerShellScript. Output goes
to `stdout`/`stderr` files in the step directory (as the SSM agent does), which are tailed
while the process runs so progress can be streamed, and read whole at the end, so nothing
is lost and a background process that keeps the descriptors open cannot hang the agent.
On timeout or cancel the whole process group gets SIGKILL (exit code 137, as SSM reports
CommandStoppedPreemptivelyExitCode); a child that starts its own session escapes that.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import IO, List, Mapping, Optional, Sequence

from agent.actions.base import ActionFailed, Context

KILLED_EXIT_CODE = 137
_POLL = 0.05
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    timed_out: bool
    cancelled: bool
    stdout: str
    stderr: str


class _Tail:
    """Follows one output file and hands decoded chunks to the context's output callback."""

    def __init__(self, path: str, stream: str, ctx: Context) -> None:
        self.stream, self.ctx = stream, ctx
        self.handle: IO[bytes] = open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def pump(self, final: bool = False) -> None:
        while True:
            data = self.handle.read(_CHUNK)
            text = self.decoder.decode(data or b"", final=final and not data)
            if text:
                self.ctx.on_output(self.stream, text)
            if not data:
                return

    def read_all(self) -> str:
        self.handle.seek(0)
        text = self.handle.read().decode("utf-8", errors="replace")
        self.handle.close()
        return text


def run_script(argv: Sequence[str], cwd: str, env: Mapping[str, str], timeout: int,
               ctx: Context) -> Outcome:
    out_path = os.path.join(ctx.step_dir, "stdout")
    err_path = os.path.join(ctx.step_dir, "stderr")
    proc = _start(argv, cwd, env, out_path, err_path)
    tails = [_Tail(out_path, "stdout", ctx), _Tail(err_path, "stderr", ctx)]
    timed_out, cancelled = _watch(proc, timeout, ctx, tails)
    for tail in tails:
        tail.pump(final=True)
    code = proc.returncode
    code = KILLED_EXIT_CODE if (timed_out or cancelled) else (128 - code if code < 0 else code)
    return Outcome(code, timed_out, cancelled, tails[0].read_all(), tails[1].read_all())


def _start(argv: Sequence[str], cwd: str, env: Mapping[str, str], out_path: str,
           err_path: str) -> "subprocess.Popen[bytes]":
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            return subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
        except OSError as exc:
            raise ActionFailed("cannot start %s: %s%s" % (argv[0], exc, _hint(exc)))


def _hint(exc: OSError) -> str:
    if exc.errno == 7:  # E2BIG
        return " (a parameter value is too large for the environment: 128 KiB per value)"
    return ""


def _watch(proc: "subprocess.Popen[bytes]", timeout: int, ctx: Context,
           tails: List[_Tail]) -> "tuple[bool, bool]":
    deadline = time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=_POLL)
            return False, False
        except subprocess.TimeoutExpired:
            pass
        for tail in tails:
            tail.pump()
        expired = time.monotonic() >= deadline
        if expired or ctx.cancel.is_set():
            _kill_group(proc)
            return expired, not expired


def _kill_group(proc: "subprocess.Popen[bytes]", sig: Optional[int] = None) -> None:
    try:
        os.killpg(proc.pid, sig or signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
