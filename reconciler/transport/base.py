"""The one transport interface: run a command, put bytes, start a process, close.

Owns `Transport` and `Process` (the abstract shapes `local` and `ssh` fill in), the
command result, and the single error type with its closed set of reasons. Callers are
`reconciler.transport.session` (the agent session) and, through `transport_for()`, the
engine and CLI. Commands are argv lists, never shell strings built from data.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import shlex
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

STDERR_TAIL_BYTES = 16 * 1024
MAX_LINE_BYTES = 1024 * 1024 * 1024
CLOSE_GRACE_SECONDS = 5.0


class Reason(str, enum.Enum):
    """Why a transport gave up: a closed vocabulary the engine and reports switch on."""

    UNREACHABLE = "unreachable"            # no route, refused, no answer in time
    AUTH_FAILED = "auth_failed"            # the node refused every key we offered
    HOST_KEY_UNKNOWN = "host_key_unknown"  # known_hosts has no key for the node
    HOST_KEY_CHANGED = "host_key_changed"  # known_hosts has another key for it
    TIMEOUT = "timeout"                    # a command or request outran its deadline
    CONNECTION_LOST = "connection_lost"    # the connection died while in use
    COMMAND_FAILED = "command_failed"      # a transport-internal command failed (e.g. put)
    AGENT_FAILED = "agent_failed"          # the agent is missing, too old, died or misspoke

    @property
    def temporary(self) -> bool:
        """Worth retrying later as is; the others need a person to change something."""
        return self in _TEMPORARY


_TEMPORARY = frozenset({Reason.UNREACHABLE, Reason.TIMEOUT, Reason.CONNECTION_LOST})


class TransportError(Exception):
    """The only error a transport or agent session raises; `str()` is one line naming the host."""

    def __init__(self, reason: Reason | str, message: str) -> None:
        super().__init__(message)
        self.reason = Reason(reason)
        self.message = message

    @property
    def temporary(self) -> bool:
        return self.reason.temporary

    def __reduce__(self):
        return type(self), (self.reason, self.message)


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def shown(argv: Sequence[str], limit: int = 80) -> str:
    """A command for messages only (never executed): quoted, shortened."""
    text = shlex.join(argv)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Process(abc.ABC):
    """A long-running command on a node whose stdin and stdout carry UTF-8 text lines.

    Subclasses supply raw reads; line framing (with no line-length surprise: an inventory
    document can be megabytes on one line) and the stderr tail live here, once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self._eof = False
        self._stderr = bytearray()

    @abc.abstractmethod
    def write_line(self, line: str) -> None:
        """Queue `line` plus a newline on the process's stdin."""

    @abc.abstractmethod
    async def _read_stdout(self) -> bytes:
        """The next bytes of stdout; b"" at its end."""

    @property
    @abc.abstractmethod
    def returncode(self) -> int | None:
        """The exit status once the process has ended, else None."""

    @abc.abstractmethod
    async def close(self, *, force: bool = False) -> None:
        """End stdin (with force: also ask the process to terminate), give it a moment to
        exit, then kill it."""

    async def read_line(self) -> str | None:
        """The next line of stdout without its newline; None once stdout has ended."""
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                return line.decode("utf-8", errors="replace")
            self._scanned = len(self._buffer)
            if self._eof:
                return self._rest()
            if len(self._buffer) > MAX_LINE_BYTES:
                raise ValueError(f"a line longer than {MAX_LINE_BYTES} bytes")
            chunk = await self._read_stdout()
            self._eof = not chunk
            self._buffer += chunk

    def _rest(self) -> str | None:
        if not self._buffer:
            return None
        line = bytes(self._buffer)
        self._buffer.clear()
        return line.decode("utf-8", errors="replace")

    @property
    def stderr_tail(self) -> str:
        """The last few KiB the process wrote on stderr (kept for error messages)."""
        return self._stderr.decode("utf-8", errors="replace")

    async def _keep_stderr(self, read) -> None:
        """Drain stderr into a bounded tail, so a chatty process never blocks on it."""
        try:
            while chunk := await read(65536):
                self._stderr += chunk
                del self._stderr[:-STDERR_TAIL_BYTES]
        except Exception:  # the stream died with the process: what we kept is enough
            return


class Stream(Process):
    """A connection to a Unix socket on the node (the resident agent's), read and written
    line by line like a Process. `reader`/`writer` are asyncio's or asyncssh's stream pair;
    `lost` turns what a dead connection raises into the transport's error."""

    def __init__(self, reader: Any, writer: Any, lost: Callable[[BaseException | None], Exception],
                 lost_types: tuple[type[BaseException], ...],
                 vanished: Callable[[], Awaitable[bool]] | None = None) -> None:
        super().__init__()
        self._reader, self._writer = reader, writer
        self._lost, self._lost_types = lost, lost_types
        self._vanished = vanished

    def write_line(self, line: str) -> None:
        try:
            self._writer.write(line.encode("utf-8") + b"\n")
        except (OSError, *self._lost_types):
            return  # the next read_line reports the end

    async def _read_stdout(self) -> bytes:
        try:
            chunk = await self._reader.read(65536)
        except (OSError, *self._lost_types) as err:
            raise self._lost(err) from None
        if not chunk and self._vanished is not None and await self._vanished():
            raise self._lost(None)
        return chunk

    @property
    def returncode(self) -> int | None:
        return None

    async def close(self, *, force: bool = False) -> None:
        try:
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_GRACE_SECONDS)
        except (asyncio.TimeoutError, OSError, *self._lost_types):
            return


class Transport(abc.ABC):
    """How the controller reaches one node. Connections are opened once and reused."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    def describe(self) -> str:
        """Short human form, e.g. "ssh plumb@web-1:22" or "local"."""

    @abc.abstractmethod
    def where(self) -> str:
        """How messages name the node, e.g. "web-1 (127.0.0.1:2222)"."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection (idempotent; the other methods call it when needed)."""

    @abc.abstractmethod
    async def run(self, argv: list[str], *, stdin: bytes | None = None,
                  timeout: float | None = None) -> CommandResult:
        """Run argv to completion. A non-zero exit is a result, not an error."""

    @abc.abstractmethod
    async def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        """Write `data` at `path` atomically (temporary file, then rename), creating its
        directory if needed. A relative path is relative to the node user's home."""

    @abc.abstractmethod
    async def start(self, argv: list[str]) -> Process:
        """Start a long-running process with piped stdin/stdout/stderr."""

    @abc.abstractmethod
    async def open_stream(self, path: str) -> Process:
        """Connect to the Unix socket at `path` (absolute) on the node: over SSH a
        direct-streamlocal channel, no command started. COMMAND_FAILED when the node refuses
        (no such socket, nobody listening, or forwarding is not allowed)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection; safe to call twice."""

    def error(self, reason: Reason, text: str) -> TransportError:
        """A TransportError whose message names this node."""
        return TransportError(reason, f"{self.where()}: {text}")

    def timed_out(self, argv: Sequence[str], timeout: float) -> TransportError:
        return self.error(Reason.TIMEOUT, f"`{shown(argv)}` did not finish within {timeout:g}s")

    async def __aenter__(self) -> "Transport":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def wait_or_kill(wait, kill, grace: float = CLOSE_GRACE_SECONDS) -> None:
    """Wait for a process to exit for `grace` seconds, then kill it and wait again."""
    try:
        await asyncio.wait_for(wait(), grace)
    except asyncio.TimeoutError:
        kill()
        try:
            await asyncio.wait_for(wait(), grace)
        except asyncio.TimeoutError:
            return
