"""The SSH transport: asyncssh, one connection per node, host keys verified by default.

The only module in plumb that imports asyncssh (tests/test_architecture.py checks it).
`transport_for()` builds an `SSHTransport` from a Node; the agent session, engine and CLI
use it through the `Transport` interface. Authentication is by key only (the node's
identityFile, else the user's default keys and ssh-agent); host keys are checked against
the node's knownHostsFile or ~/.ssh/known_hosts unless the node opts out explicitly.
~/.ssh/config is not read: everything about reaching a node is in its manifest.

SSH runs a command string through the remote user's shell; `command_line()` is the one
place an argv becomes that string, every argument quoted.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import os
import shlex
import socket
from typing import Any

import asyncssh

from .base import (CLOSE_GRACE_SECONDS, CommandResult, Process, Reason, Stream, Transport,
                   TransportError, shown, wait_or_kill)

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
KEEPALIVE_SECONDS = 15.0
KEEPALIVE_COUNT_MAX = 3

# Writes stdin to "$1" atomically: a temporary file beside it, chmod "$2", then rename.
PUT_SCRIPT = (
    'set -e; umask 077; mkdir -p -- "$(dirname -- "$1")"; tmp="$1.plumb-tmp.$$"; '
    "trap 'rm -f -- \"$tmp\"' EXIT; cat > \"$tmp\"; chmod \"$2\" -- \"$tmp\"; "
    'mv -f -- "$tmp" "$1"; trap - EXIT'
)

# What a dead connection raises (BrokenPipeError is a ConnectionError).
_LOST = (asyncssh.DisconnectError, ConnectionError, EOFError)


def command_line(argv: list[str]) -> str:
    """The shell command line for argv: every argument quoted, so data is never code."""
    return " ".join(shlex.quote(str(arg)) for arg in argv)



PREFERRED_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
                     "aes128-ctr", "aes192-ctr", "aes256-ctr"]

class SSHProcess(Process):
    def __init__(self, proc: Any, transport: "SSHTransport", argv: list[str]) -> None:
        super().__init__()
        self._proc, self._transport, self._argv = proc, transport, argv
        self._stderr_task = asyncio.ensure_future(self._keep_stderr(proc.stderr.read))

    def write_line(self, line: str) -> None:
        try:
            self._proc.stdin.write(line.encode("utf-8") + b"\n")
        except _LOST:
            return  # the next read_line reports the end

    async def _read_stdout(self) -> bytes:
        try:
            chunk = await self._proc.stdout.read(65536)
        except _LOST as err:
            raise self._transport.lost(err, self._argv) from None
        if not chunk and await self._vanished():
            raise self._transport.lost(None, self._argv)
        return chunk

    async def _vanished(self) -> bool:
        """At the end of stdout: did the connection die rather than the process end?"""
        try:
            await asyncio.wait_for(self._proc.wait_closed(), CLOSE_GRACE_SECONDS)
        except asyncio.TimeoutError:
            return False
        return self._proc.exit_status is None and self._proc.exit_signal is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def close(self, *, force: bool = False) -> None:
        try:
            self._proc.stdin.write_eof()
        except (OSError, *_LOST):
            pass
        if force:
            _stop(self._proc)
        await wait_or_kill(self._proc.wait_closed, self._proc.close)
        await asyncio.gather(self._stderr_task, return_exceptions=True)


class _Client(asyncssh.SSHClient):
    """Notes when the connection closes, so the next call reconnects instead of failing."""

    closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


class SSHTransport(Transport):
    """One node over SSH; the connection opens on first use and serves every later call."""

    def __init__(self, name: str, host: str, *, port: int = 22, user: str = "",
                 identity_file: str = "", known_hosts_file: str = "",
                 host_key_checking: bool = True, connect_timeout: float = 15.0) -> None:
        super().__init__(name)
        self.host, self.port = host, port
        self.user = user or getpass.getuser()
        self.identity_file = identity_file
        self.known_hosts_file = os.path.expanduser(known_hosts_file or DEFAULT_KNOWN_HOSTS)
        self.host_key_checking = host_key_checking
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._client = _Client()
        self._known: Any = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"ssh {self.user}@{self.host}:{self.port}"

    def where(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"

    async def connect(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._client.closed:
                return
            self._conn, self._client = None, _Client()
            options = self._options()
            try:
                self._conn = await asyncssh.connect(self.host, self.port, **options,
                                                    client_factory=lambda: self._client)
            except (asyncssh.Error, OSError, asyncio.TimeoutError) as err:
                raise await self._connect_error(err) from None

    async def run(self, argv: list[str], *, stdin: bytes | None = None,
                  timeout: float | None = None) -> CommandResult:
        proc = await self._open_process(argv)
        try:
            if stdin:
                proc.stdin.write(stdin)
            proc.stdin.write_eof()
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _stop(proc, "KILL")
            raise self.timed_out(argv, timeout) from None
        except _LOST as error:
            raise self.lost(error, argv) from None
        if proc.exit_status is None and proc.exit_signal is None:
            raise self.lost(None, argv)
        return CommandResult(proc.returncode, out or b"", err or b"")

    async def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        argv = ["sh", "-c", PUT_SCRIPT, "plumb-put", path, format(mode, "o")]
        result = await self.run(argv, stdin=data)
        if not result.ok:
            detail = result.stderr.decode("utf-8", "replace").strip() or f"exit {result.exit_status}"
            raise self.error(Reason.COMMAND_FAILED, f"cannot write {path}: {detail}")

    async def start(self, argv: list[str]) -> Process:
        return SSHProcess(await self._open_process(argv), self, argv)

    async def open_stream(self, path: str) -> Process:
        await self.connect()
        try:
            reader, writer = await self._conn.open_unix_connection(path)
        except asyncssh.ChannelOpenError as err:
            if self._client.closed:
                raise self.lost(err) from None
            raise self.error(Reason.COMMAND_FAILED, f"the node refused a connection to {path}: "
                             f"{err.reason or 'refused'}") from None
        except _LOST as err:
            raise self.lost(err) from None
        return Stream(reader, writer, self.lost, _LOST, self._dropped)

    async def _dropped(self) -> bool:
        """At the end of a stream: did the whole connection die (rather than the far end
        close the socket)? The connection's end may land a moment after the channel's."""
        for _ in range(20):
            if self._client.closed:
                return True
            await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    def lost(self, err: BaseException | None, argv: list[str] | None = None) -> TransportError:
        doing = f"while running `{shown(argv)}`" if argv else "while in use"
        detail = f" ({_reason_text(err)})" if err is not None else ""
        return self.error(Reason.CONNECTION_LOST, f"connection lost {doing}{detail}")

    async def _open_process(self, argv: list[str]) -> Any:
        await self.connect()
        try:
            return await self._conn.create_process(command_line(argv), encoding=None)
        except asyncssh.ChannelOpenError as err:
            if self._client.closed:
                raise self.lost(err, argv) from None
            raise self.error(Reason.COMMAND_FAILED, f"the node refused a session: {err.reason}") from None
        except _LOST as err:
            raise self.lost(err, argv) from None

    def _options(self) -> dict[str, Any]:
        self._known = self._read_known_hosts() if self.host_key_checking else None
        options: dict[str, Any] = {
            "username": self.user, "known_hosts": self._known, "config": None,
            "connect_timeout": self.connect_timeout, "login_timeout": self.connect_timeout,
            "keepalive_interval": KEEPALIVE_SECONDS, "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            # AES-GCM first: hardware-accelerated almost everywhere, cheaper on the controller's
            # CPU than chacha20 when hundreds of nodes are in flight; the rest stay as fallbacks.
            "encryption_algs": PREFERRED_CIPHERS,
        }
        if self.identity_file:
            options["client_keys"] = [self._check_identity()]
        return options

    def _read_known_hosts(self) -> Any:
        if not os.path.exists(self.known_hosts_file):
            return asyncssh.import_known_hosts("")
        try:
            return asyncssh.read_known_hosts(self.known_hosts_file)
        except (OSError, ValueError) as err:
            raise self.error(Reason.HOST_KEY_UNKNOWN,
                             f"cannot read known hosts {self.known_hosts_file}: {err}") from None

    def _check_identity(self) -> str:
        """The identity file's path, once it is known to hold a usable private key (asyncssh
        then also picks up a `-cert.pub` beside it)."""
        path = os.path.expanduser(self.identity_file)
        try:
            asyncssh.read_private_key(path)
            return path
        except (OSError, asyncssh.KeyImportError, ValueError) as err:
            raise self.error(Reason.AUTH_FAILED, f"cannot use identity file {path}: "
                             f"{getattr(err, 'strerror', None) or err}") from None

    async def _connect_error(self, err: BaseException) -> TransportError:
        if isinstance(err, asyncssh.HostKeyNotVerifiable):
            return await self._host_key_error()
        if isinstance(err, asyncssh.PermissionDenied):
            keys = self.identity_file or "the default keys and ssh-agent"
            return self.error(Reason.AUTH_FAILED, f"authentication failed for user {self.user} "
                              f"— the node accepted none of the keys offered ({keys})")
        if isinstance(err, asyncio.TimeoutError):
            return self.error(Reason.UNREACHABLE, f"unreachable — no answer within "
                              f"{self.connect_timeout:g}s")
        if isinstance(err, socket.gaierror):
            return self.error(Reason.UNREACHABLE, f"unreachable — cannot resolve {self.host}: "
                              f"{err.strerror}")
        return self.error(Reason.UNREACHABLE, f"unreachable — {_reason_text(err)}")

    async def _host_key_error(self) -> TransportError:
        entry = f"[{self.host}]:{self.port}" if self.port != 22 else self.host
        if await self._has_known_key():
            return self.error(Reason.HOST_KEY_CHANGED, (
                f"host key has changed — it does not match {self.known_hosts_file}; if the "
                f"change is expected, remove the old key with "
                f"ssh-keygen -R '{entry}' -f {self.known_hosts_file}"))
        return self.error(Reason.HOST_KEY_UNKNOWN, (
            f"host key is unknown — {self.known_hosts_file} has no entry for {entry}; add the "
            f"node's key there (check its fingerprint first), or set knownHostsFile"))

    async def _has_known_key(self) -> bool:
        addr = await _address_of(self.host, self.port)
        found = asyncssh.match_known_hosts(self._known, self.host, addr, self.port)
        host_keys, ca_keys = found[0], found[1]
        return bool(host_keys or ca_keys)


def _stop(proc: Any, signal: str = "TERM") -> None:
    """Best effort: signal the remote command, then close its channel (which is what
    ends it where the server ignores signal requests: its next write fails)."""
    try:
        proc.send_signal(signal)
    except Exception:  # the channel may be gone already
        pass
    proc.close()


def _reason_text(err: BaseException) -> str:
    if isinstance(err, asyncssh.Error):
        return err.reason or type(err).__name__
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno).lower()
    return str(err) or type(err).__name__


async def _address_of(host: str, port: int) -> str:
    """The IP address known_hosts entries may name, as asyncssh matches them."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return ""
    return infos[0][4][0] if infos else ""
