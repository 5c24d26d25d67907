"""The local transport: asyncio subprocesses on the controller's own machine.

The embedded default (`transport: local`), used by `transport_for()` for such nodes and
by the end-to-end tests. It behaves like the SSH transport: argv lists without a shell, a
missing command exits 127 as a shell would say, relative paths are under $HOME.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

from .base import CommandResult, Process, Reason, Stream, Transport, shown, wait_or_kill

EXIT_NOT_FOUND = 127


class LocalProcess(Process):
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__()
        self._proc = proc
        self._stderr_task = asyncio.ensure_future(self._keep_stderr(proc.stderr.read))

    def write_line(self, line: str) -> None:
        if self._proc.stdin.is_closing():
            return
        self._proc.stdin.write(line.encode("utf-8") + b"\n")

    async def _read_stdout(self) -> bytes:
        return await self._proc.stdout.read(65536)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def close(self, *, force: bool = False) -> None:
        if not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        if force and self._proc.returncode is None:
            self._proc.terminate()
        await wait_or_kill(self._proc.wait, self._kill)
        await asyncio.gather(self._stderr_task, return_exceptions=True)

    def _kill(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()


class LocalTransport(Transport):
    """Runs commands on this machine as the controller's user."""

    def describe(self) -> str:
        return "local"

    def where(self) -> str:
        return f"{self.name} (local)"

    async def connect(self) -> None:
        return None

    async def run(self, argv: list[str], *, stdin: bytes | None = None,
                  timeout: float | None = None) -> CommandResult:
        try:
            proc = await _spawn(argv, stdin=stdin is not None)
        except FileNotFoundError:
            return CommandResult(EXIT_NOT_FOUND, b"", f"{argv[0]}: command not found\n".encode())
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise self.timed_out(argv, timeout) from None
        return CommandResult(proc.returncode, out, err)

    async def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        target = os.path.join(os.path.expanduser("~"), path)
        try:
            await asyncio.to_thread(_write_atomically, data, target, mode)
        except OSError as err:
            raise self.error(Reason.COMMAND_FAILED, f"cannot write {target}: {err.strerror or err}") from None

    async def start(self, argv: list[str]) -> Process:
        try:
            return LocalProcess(await _spawn(argv))
        except OSError as err:
            raise self.error(Reason.COMMAND_FAILED,
                             f"cannot start `{shown(argv)}`: {err.strerror or err}") from None

    async def open_stream(self, path: str) -> Process:
        try:
            reader, writer = await asyncio.open_unix_connection(path, limit=2 ** 20)
        except OSError as err:
            raise self.error(Reason.COMMAND_FAILED,
                             f"cannot connect to {path}: {err.strerror or err}") from None
        return Stream(reader, writer, self._lost, ())

    def _lost(self, err: BaseException | None) -> Exception:
        detail = f" ({err})" if err is not None else ""
        return self.error(Reason.CONNECTION_LOST, f"the agent's socket closed{detail}")

    async def close(self) -> None:
        return None


async def _spawn(argv: list[str], stdin: bool = True) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    source = pipe if stdin else asyncio.subprocess.DEVNULL
    # A session of its own: Ctrl-C or a service manager's stop signal meant for the controller
    # must not also kill the agent in the middle of applying a change.
    return await asyncio.create_subprocess_exec(*argv, stdin=source, stdout=pipe, stderr=pipe,
                                                start_new_session=True)


def _write_atomically(data: bytes, target: str, mode: int) -> None:
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".plumb-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
