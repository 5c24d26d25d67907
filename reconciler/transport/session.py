"""AgentSession: one persistent agent process on a node, spoken to in JSON lines.

Owns the controller's side of the `serve` protocol (agent/serve.py owns the node's side).
The engine and CLI open one session per node per cycle (`session_for()` in this package)
and send it every request; it works over any `Transport`, so the local and SSH
transports take exactly the same path:

1. one probe command resolves the cache directory on the node, checks the Python
   version (>= 3.9) and whether the agent zipapp for this controller's hash is there;
2. `put` uploads the zipapp only when it is missing;
3. `<python> <dir>/plumb-agent-<hash>.pyz serve` starts once (under `sudo -n` for
   `become: sudo`), then `hello`, `collect`, `execute`... and finally `exit`.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import posixpath
from typing import Any, Callable, Mapping

from .. import agentpack
from .base import Process, Reason, Transport, TransportError

MIN_PYTHON = (3, 9)
DEFAULT_REQUEST_TIMEOUT = 600.0
EXIT_TIMEOUT = 5.0
PROBE_TIMEOUT = 60.0
COLLECT_DEADLINE_SHARE = 0.8
EXIT_NOT_FOUND = 127

# $1 python, $2 cache directory ("~/" = the user's home, "~/.cache/" = the XDG cache), $3
# the zipapp's file name. Prints the resolved directory, the Python version, and whether
# the file is there.
PROBE_SCRIPT = r"""
case $2 in
  "~/.cache/"*) dir=${XDG_CACHE_HOME:-$HOME/.cache}/${2#"~/.cache/"} ;;
  "~/"*) dir=$HOME/${2#"~/"} ;;
  *) dir=$2 ;;
esac
printf '%s\n' "$dir"
"$1" -c 'import sys; print("%d.%d.%d" % tuple(sys.version_info[:3]))' || exit 127
if [ -f "$dir/$3" ]; then echo present; else echo missing; fi
"""

OnEvent = Callable[[dict], Any]


class AgentSession:
    """The agent on one node, started once and reused for every request."""

    def __init__(self, transport: Transport, *, python: str = "python3", become: str = "none",
                 directory: str = agentpack.DEFAULT_DIR,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 close_transport: bool = False) -> None:
        self.transport = transport
        self.python, self.become, self.directory = python, become, directory
        self.request_timeout = request_timeout
        self.close_transport = close_transport
        self.agent_path = ""
        self.uploaded = False      # True when open() had to ship the zipapp
        self.info: dict = {}       # the agent's hello
        self._process: Process | None = None
        self._ids = itertools.count(1)
        self._broken = ""
        self._lock = asyncio.Lock()  # one request at a time: answers are read in order

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> "AgentSession":
        data, digest = agentpack.agent_zipapp()
        name = agentpack.agent_filename(digest)
        directory, present = await self._probe(name)
        self.agent_path = posixpath.join(directory, name)
        if not present:
            await self.transport.put(data, self.agent_path, 0o644)
            self.uploaded = True
        self._process = await self._start()
        self.info = await self.request("hello", {})
        return self

    async def close(self) -> None:
        """Ask the agent to exit, then make sure it has; close the transport if owned."""
        process = self._process
        try:
            if process is not None:
                if not self._broken:
                    await self._exit()
                await process.close()
        finally:
            self._process = None
            self._broken = self._broken or "the session is closed"
            if self.close_transport:
                await self.transport.close()

    async def __aenter__(self) -> "AgentSession":
        try:
            return await self.open()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------------ requests

    async def hello(self) -> dict:
        return await self.request("hello", {})

    async def collect(self, *, timeout: float | None = None, **args: Any) -> dict:
        """The node's inventory document; args as the agent's: types, files, sysctl,
        content, contentMaxBytes, customDir, aptCacheDir.

        With `timeout`, the agent's own deadline is set a little shorter, so slow
        collectors come back as `unknown` types rather than the whole node timing out."""
        if timeout is not None:
            args.setdefault("timeout", timeout * COLLECT_DEADLINE_SHARE)
        return await self.request("collect", args, timeout=timeout)

    async def execute(self, request: Mapping[str, Any], on_event: OnEvent | None = None,
                      timeout: float | None = None) -> dict:
        """Run a document; every event goes to `on_event` as it comes; returns the
        invocation_finished event. No deadline unless `timeout` is given: the document's
        steps carry their own."""
        return await self.request("execute", request, on_event=on_event, timeout=timeout,
                                  default_timeout=None)

    async def request(self, op: str, args: Mapping[str, Any], *, on_event: OnEvent | None = None,
                      timeout: float | None = None,
                      default_timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> dict:
        """Send one request and wait for its answer; an agent error raises agent_failed."""
        limit = timeout if timeout is not None else (
            self.request_timeout if default_timeout is not None else None)
        async with self._lock:
            return await self._exchange(op, args, on_event, limit)

    async def _exchange(self, op: str, args: Mapping[str, Any], on_event: OnEvent | None,
                        limit: float | None) -> dict:
        process = self._usable()
        request_id = next(self._ids)
        process.write_line(json.dumps({"id": request_id, "op": op, "args": args},
                                      separators=(",", ":"), default=_plain))
        try:
            answer = await asyncio.wait_for(self._answer(process, request_id, op, on_event), limit)
        except asyncio.TimeoutError:
            await self._abandon(process)
            raise self._error(Reason.TIMEOUT, f"the agent did not answer {op!r} within "
                              f"{limit:g}s") from None
        except TransportError as err:
            self._broken = str(err)
            raise
        if "result" in answer:
            return answer["result"]
        error = answer.get("error") or {}
        raise self._error(Reason.AGENT_FAILED, f"the agent refused {op!r}: "
                          f"{error.get('type')}: {error.get('message')}")

    # ------------------------------------------------------------------ internals

    async def _probe(self, name: str) -> tuple[str, bool]:
        argv = ["sh", "-c", PROBE_SCRIPT, "plumb-probe", self.python, self.directory, name]
        result = await self.transport.run(argv, timeout=PROBE_TIMEOUT)
        lines = result.stdout.decode("utf-8", "replace").splitlines()
        if result.exit_status == EXIT_NOT_FOUND or len(lines) < 2:
            raise self._error(Reason.AGENT_FAILED, f"{self.python} was not found on the node; "
                              f"install Python >= 3.9 or set spec.python")
        if not result.ok or len(lines) != 3:
            raise self._error(Reason.COMMAND_FAILED, "probing the node failed: "
                              + _last_line(result.stderr.decode("utf-8", "replace")))
        self._check_version(lines[1])
        return lines[0], lines[2] == "present"

    async def _start(self) -> Process:
        sudo = ["sudo", "-n", "--"] if self.become == "sudo" else []
        try:
            return await self.transport.start([*sudo, self.python, self.agent_path, "serve"])
        except TransportError as err:
            if err.reason is not Reason.COMMAND_FAILED:
                raise
            raise TransportError(Reason.AGENT_FAILED, err.message) from None

    async def _answer(self, process: Process, request_id: int, op: str,
                      on_event: OnEvent | None) -> dict:
        while True:
            line = await process.read_line()
            if line is None:
                raise self._error(Reason.AGENT_FAILED, await self._ended(process, op))
            message = self._decode(line)
            if message.get("id") != request_id:
                continue  # an answer to a request given up on earlier
            if "event" not in message:
                return message
            await _deliver(on_event, message["event"])

    def _decode(self, line: str) -> dict:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise self._error(Reason.AGENT_FAILED, f"the agent wrote a line that is not part "
                              f"of the protocol: {line[:200]!r}")
        return message

    async def _ended(self, process: Process, op: str) -> str:
        await process.close()
        stderr = _last_line(process.stderr_tail)
        status = process.returncode
        ended = f"the agent exited (status {status})" if status is not None else "the agent ended"
        return f"{ended} during {op!r}" + (f": {stderr}" if stderr else "")

    async def _exit(self) -> None:
        try:
            await self.request("exit", {}, timeout=EXIT_TIMEOUT)
        except TransportError:
            return  # close() stops it anyway

    async def _abandon(self, process: Process) -> None:
        self._broken = "an earlier request timed out"
        self._process = None
        await process.close(force=True)

    def _usable(self) -> Process:
        if self._process is None or self._broken:
            why = self._broken or "the session is not open"
            raise self._error(Reason.AGENT_FAILED, f"no agent to talk to: {why}")
        return self._process

    def _check_version(self, text: str) -> None:
        try:
            version = tuple(int(part) for part in text.split("."))
        except ValueError:
            version = ()
        if version[:2] < MIN_PYTHON:
            raise self._error(Reason.AGENT_FAILED, f"{self.python} is Python {text}; the agent "
                              f"needs Python >= 3.9 (install it or set spec.python)")

    def _error(self, reason: Reason, text: str) -> TransportError:
        return self.transport.error(reason, text)


async def _deliver(on_event: OnEvent | None, event: dict) -> None:
    if on_event is None:
        return
    outcome = on_event(event)
    if inspect.isawaitable(outcome):
        await outcome


def _plain(value: Any) -> Any:
    """JSON for the read-only values the model holds (mappings that are not dicts)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
