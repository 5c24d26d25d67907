"""The persistent agent session: JSON-lines requests on stdin, tagged answers on stdout.

Owns the `serve` protocol. The controller (`reconciler.transport.session.AgentSession`)
starts `python3 plumb-agent-<hash>.pyz serve` once per node per cycle and sends every
request as one line:

    {"id": 7, "op": "hello" | "collect" | "execute" | "exit" | "shutdown", "args": {...}}

For each request the agent answers, tagged with the same id, zero or more
`{"id": 7, "event": {...}}` lines (execute's streamed events, invocation_finished
included) and then exactly one `{"id": 7, "result": {...}}` or
`{"id": 7, "error": {"type": ..., "message": ...}}`. Requests are served one at a time, in
order. A bad line gets an error (with id null when it has no usable id) and the agent keeps
serving; `exit` or the end of input ends it with status 0. Every line is flushed at once.
`shutdown` is `exit` for this agent, and for a resident agent also the end of the agent
itself once its other sessions' requests are answered.

`serve --listen SOCKET` serves the same protocol on a Unix socket and stays running between
sessions (agent/resident.py).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Tuple

from agent import __version__, is_resident

PROTOCOL_VERSION = 1

# The closed set of error types an answer can carry.
BAD_REQUEST = "bad_request"      # not JSON, not an object, bad id or args
UNKNOWN_OP = "unknown_op"        # an op this agent does not serve
UNAVAILABLE = "unavailable"      # this agent was built without the op's module
INTERNAL = "internal"            # a bug in the agent: the message says where

_COLLECT_ARGS = ("types", "files", "sysctl", "packages", "content", "contentPaths", "contentMaxBytes",
                 "customDir", "aptCacheDir", "timeout", "refreshPackageLists")


class RequestError(Exception):
    """A request the agent refuses; becomes that request's `error` answer."""

    def __init__(self, kind: str, message: str, request_id: Optional[int] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.request_id = request_id


class Writer:
    """Writes one JSON object per line on the protocol stream and flushes it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.broken = False

    def __call__(self, message: Mapping[str, Any]) -> bool:
        line = json.dumps(message, ensure_ascii=True, separators=(",", ":")) + "\n"
        with self.lock:
            try:
                self.stream.write(line.encode("ascii"))
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.broken = True
        return not self.broken


class Server:
    """Answers requests one at a time; `handle()` returns False when the session ends."""

    def __init__(self, out: BinaryIO) -> None:
        self.write = Writer(out)
        self.cancel = threading.Event()
        self.busy = False
        self.stopping = False
        self.shutdown = False   # the session asked the whole (resident) agent to end

    def handle(self, raw: bytes) -> bool:
        request_id: Optional[int] = None
        try:
            request_id, op, args = parse_request(raw)
            if op in ("exit", "shutdown"):
                self.shutdown = op == "shutdown"
                self.write({"id": request_id, "result": {}})
                return False
            self.busy = True
            result = self.dispatch(request_id, op, args)
            self.write({"id": request_id, "result": result})
        except RequestError as err:
            tag = request_id if request_id is not None else err.request_id
            self.write({"id": tag, "error": {"type": err.kind, "message": str(err)}})
        except Exception as err:  # a bug must cost one answer, never the session
            traceback.print_exc(file=sys.stderr)
            message = "%s: %s" % (type(err).__name__, err)
            self.write({"id": request_id, "error": {"type": INTERNAL, "message": message}})
        finally:
            self.busy = False
        return not (self.stopping or self.write.broken)

    def dispatch(self, request_id: int, op: str, args: Mapping[str, Any]) -> Dict[str, Any]:
        if op == "hello":
            return hello()
        if op == "collect":
            return collect(args)
        if op == "execute":
            return self.execute(request_id, args)
        raise RequestError(UNKNOWN_OP, "unknown op %r; this agent serves: %s"
                           % (op, ", ".join(ops())))

    def execute(self, request_id: int, request: Mapping[str, Any]) -> Dict[str, Any]:
        executor = _executor()

        def emit(event: Dict[str, Any]) -> None:
            if not self.write({"id": request_id, "event": event}):
                self.cancel.set()

        return executor.execute(request, emit, self.cancel)

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM/SIGHUP/SIGINT: cancel the running document, then stop; idle: stop now."""
        self.stopping = True
        self.cancel.set()
        if not self.busy:
            raise SystemExit(128 + signum)


def parse_request(raw: bytes) -> Tuple[int, str, Mapping[str, Any]]:
    """(id, op, args) of one request line, or RequestError saying what is wrong with it."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise RequestError(BAD_REQUEST, "the request is not a JSON line: %s" % err) from None
    if not isinstance(value, dict):
        raise RequestError(BAD_REQUEST, "the request must be a JSON object, got %s"
                           % type(value).__name__)
    request_id = value.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise RequestError(BAD_REQUEST, "the request needs an integer 'id'")
    op, args = value.get("op"), value.get("args", {})
    if not isinstance(op, str):
        raise RequestError(BAD_REQUEST, "the request needs a string 'op'", request_id)
    if not isinstance(args, dict):
        raise RequestError(BAD_REQUEST, "'args' must be a JSON object", request_id)
    return request_id, op, args


def ops() -> List[str]:
    """What this agent serves; the executor is looked for, not imported (hello stays cheap)."""
    served = ["hello", "collect", "exit", "shutdown"]
    if importlib.util.find_spec("agent.executor") is not None:
        served.insert(2, "execute")
    return served


def hello() -> Dict[str, Any]:
    uname = os.uname()
    return {
        "resident": is_resident(),
        "startedAt": _started_at(),
        "agentVersion": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": "%d.%d.%d" % tuple(sys.version_info[:3]),
        "pid": os.getpid(),
        "platform": "%s-%s-%s" % (uname.sysname, uname.release, uname.machine),
        "ops": ops(),
    }


@functools.lru_cache(maxsize=1)
def _started_at() -> str:
    """When this agent process started (UTC, ISO 8601): from /proc where there is one."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            ticks = int(handle.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        started = _IMPORTED
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))


_IMPORTED = time.time()


def collect(args: Mapping[str, Any]) -> Dict[str, Any]:
    """The inventory document, with the same choices as `python3 -m agent collect`."""
    from agent import inventory
    from agent.collectors.base import Options

    unknown = sorted(set(args) - set(_COLLECT_ARGS))
    if unknown:
        raise RequestError(BAD_REQUEST, "collect: unknown argument %r; known: %s"
                           % (unknown[0], ", ".join(_COLLECT_ARGS)))
    types = _strings(args, "types")
    packages = _strings(args, "packages")  # None: every package; []: none
    max_bytes = _number(args, "contentMaxBytes", int)
    content_paths = _strings(args, "contentPaths")
    given = {"content_max_bytes": max_bytes, "custom_dir": _string(args, "customDir"),
             "apt_cache_dir": _string(args, "aptCacheDir")}
    options = Options(
        files=tuple(_strings(args, "files") or ()),
        sysctl_keys=tuple(_strings(args, "sysctl") or ()),
        content=bool(args.get("content")) or max_bytes is not None or content_paths is not None,
        content_paths=tuple(content_paths) if content_paths is not None else None,
        packages=tuple(packages) if packages is not None else None,
        refresh_package_lists=bool(args.get("refreshPackageLists")),
        **{key: value for key, value in given.items() if value is not None},
    )
    try:
        inventory.select(types, options)
    except ValueError as err:
        raise RequestError(BAD_REQUEST, "collect: %s" % err) from None
    deadline = _number(args, "timeout", float)
    return inventory.collect(types, options,
                             inventory.DEFAULT_DEADLINE if deadline is None else deadline)


def _strings(args: Mapping[str, Any], key: str) -> Optional[List[str]]:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(BAD_REQUEST, "collect: %r must be a list of strings" % key)
    return value


def _string(args: Mapping[str, Any], key: str) -> Optional[str]:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestError(BAD_REQUEST, "collect: %r must be a string" % key)
    return value


def _number(args: Mapping[str, Any], key: str, kind: Callable[[Any], Any]) -> Any:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
            or (kind is int and not isinstance(value, int)):
        raise RequestError(BAD_REQUEST, "collect: %r must be a number >= 0" % key)
    return kind(value)


def _executor() -> Any:
    try:
        from agent import executor
    except ImportError as err:
        raise RequestError(UNAVAILABLE, "execute is not available in this agent: %s" % err) from None
    return executor


def serve(instream: BinaryIO, outstream: BinaryIO, server: Optional[Server] = None) -> int:
    """Serve requests from `instream` until `exit` or end of input."""
    server = server or Server(outstream)
    for raw in iter(instream.readline, b""):
        if not raw.strip():
            continue
        server.cancel = threading.Event()   # each request starts uncancelled
        if not server.handle(raw):
            break
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """`python3 -m agent.serve` / `python3 agent.pyz serve`.

    The protocol keeps private copies of stdin and stdout; fd 0 becomes /dev/null and fd 1
    goes to stderr, so neither a stray print nor a command a step runs can read requests
    or write into the answer stream.
    """
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv:
        from agent import resident  # `serve --listen SOCKET`: the resident agent
        return resident.main(argv)
    instream = os.fdopen(os.dup(0), "rb")
    outstream = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    server = Server(outstream)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, server.on_signal)
    try:
        return serve(instream, outstream, server)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
