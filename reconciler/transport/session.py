"""AgentSession: the agent on one node, spoken to in JSON lines.

Owns the controller's side of the `serve` protocol (agent/serve.py owns the node's side,
agent/resident.py the resident agent). The engine and CLI open one session per node per
cycle (`session_for()` in this package) and send it every request; it works over any
`Transport`, so the local and SSH transports take exactly the same path. Two ways to reach
the agent:

Resident (`resident=True`; the default for SSH nodes, see `session_for`). The agent stays
running on the node between sessions, listening on a Unix socket in its cache directory,
and a session is a connection to that socket (over SSH a direct-streamlocal channel: no
command, no login shell, no interpreter start on the node). The first session of this
process runs ONE launcher command that resolves the directory, uploads/unpacks the agent
when needed and starts the resident agent when its socket is not there; later sessions
connect straight to the socket they learned. A stale socket gets a fresh agent; a node
that refuses the channel (AllowStreamLocalForwarding no, a `restrict`ed key) or where no
socket can be made gets the per-session agent instead, with `fallback` saying why.

Per session (`resident=False`, and the fallback):
1. ONE launcher command resolves the cache directory on the node and, when the agent for
   this controller's hash is there, runs it: the first time from the zipapp it unpacks and
   byte-compiles `<dir>/plumb-agent-<hash>/` (Python cannot cache compiled code inside a
   zip), afterwards straight from that directory with `python -I -S` (isolated, no site);
2. only when the zipapp is missing does the launcher say so and exit: `put` uploads it
   and the launcher runs again;
3. the agent (`serve`, under `sudo -n` for `become: sudo`) answers `hello`, then
   `collect`, `execute`... and finally `exit`.
One SSH command per session: a login shell and an interpreter start are paid once per
session, which is what dominates the cost per node and what the resident agent removes.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import posixpath
import time
from typing import Any, Callable, Mapping

from .. import agentpack
from .base import Process, Reason, Transport, TransportError

MIN_PYTHON = (3, 9)
DEFAULT_REQUEST_TIMEOUT = 600.0
EXIT_TIMEOUT = 5.0
LAUNCH_TIMEOUT = 120.0
COLLECT_DEADLINE_SHARE = 0.8

# $1 python, $2 cache directory ("~/" = the user's home, "~/.cache/" = the XDG cache), $3
# the zipapp's file name, $4 "sudo" or "", $5 UNPACK, $6 the mode, $7 the resident agent's
# idle timeout. Says `plumb-launch: missing DIR` when the zipapp must be uploaded. Mode
# "serve": says `plumb-launch: ready DIR` and becomes the agent on stdio. Modes "resident"
# and "restart": say `plumb-launch: at DIR`, then `plumb-launch: listening` when the
# resident agent's socket is there (resident only), else start it detached and relay its
# `started PID` / `running PID` / `failed REASON`, and end. Mode "refused" notes on the node
# (`SOCKET.refused`) that the SSH server refuses the channel to the socket, then acts as
# "serve"; for an hour after that note, "resident" acts as "serve" too (and the resident
# agent, seeing the note, ends). Mode "find" lists the resident
# agents' sockets in the directory (`plumb-launch: socket PATH` ..., `plumb-launch: end`),
# of any version, and fresh refusal notes (`plumb-launch: refused PATH`); it starts nothing.
LAUNCH_SCRIPT = r"""
case $2 in
  "~/.cache/"*) dir=${XDG_CACHE_HOME:-$HOME/.cache}/${2#"~/.cache/"} ;;
  "~/"*) dir=$HOME/${2#"~/"} ;;
  *) dir=$2 ;;
esac
if [ "$6" = find ]; then
  for sock in "$dir"/plumb-agent-*.sock; do [ -S "$sock" ] && echo "plumb-launch: socket $sock"; done
  for note in "$dir"/plumb-agent-*.sock.refused; do
    [ -n "$(find "$note" -mmin -60 2>/dev/null)" ] && echo "plumb-launch: refused $note"
  done
  echo "plumb-launch: end"; exit 0
fi
command -v "$1" >/dev/null 2>&1 || { echo "plumb-launch: no-python"; exit 127; }
run="$dir/${3%.pyz}"
if [ ! -f "$run/__main__.py" ]; then
  [ -f "$dir/$3" ] || { echo "plumb-launch: missing $dir"; exit 0; }
  "$1" -I -S -c "$5" "$dir/$3" "$run" || exit 1
fi
sock="$run${4:+-$4}.sock"
mode=$6
if [ "$mode" = refused ]; then : > "$sock.refused"; mode=serve; fi
if [ "$mode" = resident ] && [ -n "$(find "$sock.refused" -mmin -60 2>/dev/null)" ]; then mode=serve; fi
if [ "$mode" = serve ]; then
  echo "plumb-launch: ready $dir"
  if [ "$4" = sudo ]; then exec sudo -n -- "$1" -I -S "$run" serve; fi
  exec "$1" -I -S "$run" serve
fi
echo "plumb-launch: at $dir"
if [ "$mode" = resident ] && [ -S "$sock" ]; then echo "plumb-launch: listening"; exit 0; fi
if [ "$4" = sudo ]; then
  exec sudo -n -- "$1" -I -S "$run" serve --listen "$sock" --idle-timeout "$7"
fi
exec "$1" -I -S "$run" serve --listen "$sock" --idle-timeout "$7"
"""

# Unpacks the zipapp into a byte-compiled directory, atomically (a concurrent session
# may win the race; its copy is identical). Refuses Pythons older than 3.9. Then, since a
# new version has arrived, tidies the directory: of the other agent versions, the newest
# KEEP_VERSIONS stay; older ones go (zipapp, unpacked copy, socket files) unless a resident
# agent still answers on their socket. A controller that still ships a removed version
# uploads it again.
KEEP_VERSIONS = 4
UNPACK = r"""
import compileall, glob, os, shutil, socket, sys, tempfile, zipfile
if sys.version_info < (3, 9):
    print("plumb-launch: python %d.%d.%d" % tuple(sys.version_info[:3])); sys.exit(3)
src, dst = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix=os.path.basename(dst) + ".", dir=os.path.dirname(dst))
zipfile.ZipFile(src).extractall(tmp)
compileall.compile_dir(tmp, quiet=1)
try:
    os.rename(tmp, dst)
except OSError:
    shutil.rmtree(tmp, ignore_errors=True)

def answers(path):
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()

def mtime(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0

others = [p for p in glob.glob(os.path.join(os.path.dirname(dst), "plumb-agent-*.pyz")) if p != src]
for old in sorted(others, key=mtime, reverse=True)[KEEP_VERSIONS:]:
    stem = old[:-len(".pyz")]
    if any(answers(sock) for sock in (stem + ".sock", stem + "-sudo.sock")):
        continue
    shutil.rmtree(stem, ignore_errors=True)
    for leftover in [old] + glob.glob(stem + ".sock*") + glob.glob(stem + "-sudo.sock*"):
        try:
            os.unlink(leftover)
        except OSError:
            pass
""".replace("KEEP_VERSIONS", str(KEEP_VERSIONS))
LAUNCH_PREFIX = "plumb-launch: "
DEFAULT_IDLE_TIMEOUT = 3600
RETRY_FORWARDING_SECONDS = 3600.0

OnEvent = Callable[[dict], Any]


class AgentEnded(TransportError):
    """The agent's output ended before it answered (it exited, or its socket closed)."""

# Where each node's resident agent was found, so a later session in this process connects
# straight to its socket with no command at all: key -> socket path, or (None, when) for a
# node that cannot be reached that way (forwarding refused, no socket possible), tried
# again after RETRY_FORWARDING_SECONDS.
_RESIDENT: dict[tuple, Any] = {}


class AgentSession:
    """The agent on one node, started once and reused for every request."""

    def __init__(self, transport: Transport, *, python: str = "python3", become: str = "none",
                 directory: str = agentpack.DEFAULT_DIR,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 close_transport: bool = False, resident: bool = False,
                 idle_timeout: int = DEFAULT_IDLE_TIMEOUT) -> None:
        self.transport = transport
        self.python, self.become, self.directory = python, become, directory
        self.request_timeout = request_timeout
        self.close_transport = close_transport
        self.resident, self.idle_timeout = resident, idle_timeout
        self.mode = ""             # "resident" or "session" once open
        self.fallback = ""         # why a resident agent was asked for but not used
        self.agent_path = ""
        self.uploaded = False      # True when open() had to ship the zipapp
        self.info: dict = {}       # the agent's hello
        self._process: Process | None = None
        self._ids = itertools.count(1)
        self._broken = ""
        self._lock = asyncio.Lock()  # one request at a time: answers are read in order

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> "AgentSession":
        """Reach the agent: the node's resident agent when asked for and possible, else one
        started for this session on the command's stdio."""
        data, digest = agentpack.agent_zipapp()
        name = agentpack.agent_filename(digest)
        await self._reach(data, name)
        try:
            self.info = await self.request("hello", {})
        except TransportError as err:
            if self.mode != "resident" or err.reason not in (Reason.AGENT_FAILED, Reason.CONNECTION_LOST):
                raise
            # The resident agent ended as we connected (its idle time ran out, it was
            # stopped): start over once, which finds its socket gone or stale.
            await self._process.close(force=True)
            self._process, self._broken = None, ""
            self.forget_resident()
            await self._reach(data, name)
            self.info = await self.request("hello", {})
        self._check_version(str(self.info.get("python", "")))
        return self

    def forget_resident(self) -> None:
        """Forget where this node's resident agent listens: the next session looks again."""
        _RESIDENT.pop(self._key(agentpack.agent_filename(agentpack.agent_zipapp()[1])), None)

    async def _reach(self, data: bytes, name: str) -> None:
        """Make `_process` the agent: the resident one when asked for and possible, else one
        started for this session."""
        if self.resident and await self._open_resident(data, name):
            return
        status, _ = await self._prepare(data, name, "serve")
        if status != "ready":
            raise self._error(Reason.AGENT_FAILED, f"the agent did not start: {status}")
        self.mode = "session"

    def _key(self, name: str) -> tuple:
        return (self.transport.describe(), self.python, self.become, self.directory, name)

    async def _prepare(self, data: bytes, name: str, mode: str) -> tuple[str, str]:
        """Run the launcher in `mode`, uploading the zipapp first when the node lacks it."""
        status, directory = await self._launch(name, mode)
        self.agent_path = posixpath.join(directory, name)
        if status == "missing":
            await self.transport.put(data, self.agent_path, 0o644)
            self.uploaded = True
            status, directory = await self._launch(name, mode)
        return status, directory

    async def _open_resident(self, data: bytes, name: str) -> bool:
        """True once `_process` is the agent: the node's resident agent (started when it is
        not running) or, where the SSH server refuses the channel to its socket, a
        per-session agent started by the launcher command that learned it (`fallback` says
        why). False (with `fallback`) when the caller must start a per-session agent."""
        key = self._key(name)
        known = _RESIDENT.get(key)
        if isinstance(known, tuple) and time.monotonic() - known[1] < RETRY_FORWARDING_SECONDS:
            self.fallback = known[0]
            return False
        if isinstance(known, str) and await self._connect(known):
            return True
        status, directory = await self._prepare(data, name, "resident")
        if status == "ready":   # the node noted within the hour that the channel is refused
            return self._per_session(key, "the SSH server refuses the channel to the resident agent's "
                                          "socket (noted on the node within the last hour)")
        path = posixpath.join(directory, self._socket_name(name))
        tries = 0
        while status in ("listening", "started", "running"):
            if await self._connect(path):
                _RESIDENT[key] = path
                return True
            if status != "listening" or tries:
                break
            tries += 1  # a socket left by an agent that is gone: start a new one
            status, directory = await self._prepare(data, name, "restart")
        if status in ("started", "running"):
            # An agent listens there, yet the channel is refused: the server does not allow
            # it (AllowStreamLocalForwarding, a restricted key). Note it on the node (the
            # resident agent ends; later sessions go per-session at once) and serve this one.
            why = self.fallback
            status, _ = await self._prepare(data, name, "refused")
            if status == "ready":
                return self._per_session(key, f"the SSH server refuses the channel to the resident "
                                              f"agent's socket ({why})")
        self.fallback = self.fallback or f"the resident agent did not start: {status}"
        _RESIDENT[key] = (self.fallback, time.monotonic())
        return False

    def _per_session(self, key: tuple, why: str) -> bool:
        self.mode, self.fallback = "session", why
        _RESIDENT[key] = (why, time.monotonic())
        return True

    async def _connect(self, path: str) -> bool:
        try:
            self._process = await self.transport.open_stream(path)
        except TransportError as err:
            if err.reason is not Reason.COMMAND_FAILED:
                raise
            self.fallback = err.message
            return False
        self.mode, self.fallback = "resident", ""
        return True

    # ------------------------------------------------------------------ resident agents

    async def resident_sockets(self) -> tuple[list[str], bool]:
        """The sockets of the resident agents (any version) in the node's agent directory,
        and whether the node notes (within the hour) that its SSH server refuses the channel
        to them; nothing is uploaded or started."""
        argv = ["sh", "-c", LAUNCH_SCRIPT, "plumb-launch", self.python, self.directory, "-",
                "", "", "find", "0"]
        result = await self.transport.run(argv, timeout=LAUNCH_TIMEOUT)
        lines = result.stdout.decode("utf-8", "replace").splitlines()
        if not result.ok or f"{LAUNCH_PREFIX}end" not in lines:
            detail = _last_line(result.stderr.decode("utf-8", "replace")) or f"exit {result.exit_status}"
            raise self._error(Reason.AGENT_FAILED, f"cannot list the resident agents: {detail}")
        prefix = f"{LAUNCH_PREFIX}socket "
        return ([line[len(prefix):] for line in lines if line.startswith(prefix)],
                any(line.startswith(f"{LAUNCH_PREFIX}refused ") for line in lines))

    async def attach(self, path: str) -> dict:
        """Connect this (unopened) session to the resident agent at `path`; its hello.
        COMMAND_FAILED when nobody answers there (a stale socket) or forwarding is refused."""
        self._process = await self.transport.open_stream(path)
        self.mode = "resident"
        self.info = await self.request("hello", {})
        return self.info

    async def shutdown(self) -> None:
        """Ask the resident agent to end (after what its other sessions run), and close."""
        try:
            await self.request("shutdown", {}, timeout=EXIT_TIMEOUT)
        except AgentEnded:
            pass   # it ended before answering (another session asked too): what we asked for
        self._broken = "the agent was asked to shut down"
        await self.close()

    def _socket_name(self, name: str) -> str:
        return name[: -len(".pyz")] + ("-sudo" if self.become == "sudo" else "") + ".sock"

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

    async def _launch(self, name: str, mode: str) -> tuple[str, str]:
        """Run the launcher. Mode "serve": ("ready", dir) with the agent running on its
        stdio. Modes "resident"/"restart": (status, dir) with status "listening", "started",
        "running" or "failed ..." and the launcher finished. ("missing", dir) in any mode
        when the zipapp must be uploaded; anything else raises."""
        argv = ["sh", "-c", LAUNCH_SCRIPT, "plumb-launch", self.python, self.directory, name,
                "sudo" if self.become == "sudo" else "", UNPACK, mode, str(self.idle_timeout)]
        try:
            process = await self.transport.start(argv)
        except TransportError as err:
            if err.reason is not Reason.COMMAND_FAILED:
                raise
            raise TransportError(Reason.AGENT_FAILED, err.message) from None
        word, rest = await self._launcher_says(process)
        if word == "ready":
            self._process = process
            return "ready", rest
        if word == "at":
            directory = rest
            word, rest = await self._launcher_says(process)
            await process.close()
            return (f"{word} {rest}".strip() if word == "failed" else word), directory
        await process.close(force=word != "missing")
        if word == "missing":
            return "missing", rest
        if word == "no-python":
            raise self._error(Reason.AGENT_FAILED, f"{self.python} was not found on the node; "
                              "install Python >= 3.9 or set spec.python")
        if word == "python":
            self._check_version(rest)
        raise self._error(Reason.AGENT_FAILED, f"the agent did not start: {word} {rest}".rstrip())

    async def _launcher_says(self, process: Process) -> tuple[str, str]:
        """The launcher's next `plumb-launch: WORD REST` line, as (WORD, REST)."""
        line = await asyncio.wait_for(process.read_line(), LAUNCH_TIMEOUT)
        if line is None:
            raise self._error(Reason.AGENT_FAILED, f"the agent did not start: {await self._ended(process, 'start')}")
        if not line.startswith(LAUNCH_PREFIX):
            await process.close(force=True)
            raise self._error(Reason.AGENT_FAILED, f"the agent did not start: unexpected output: {line[:200]}")
        word, _, rest = line[len(LAUNCH_PREFIX):].strip().partition(" ")
        return word, rest

    async def _answer(self, process: Process, request_id: int, op: str,
                      on_event: OnEvent | None) -> dict:
        while True:
            line = await process.read_line()
            if line is None:
                raise AgentEnded(Reason.AGENT_FAILED, self.transport.where() + ": "
                                 + await self._ended(process, op))
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
