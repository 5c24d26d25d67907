"""The resident agent: the `serve` protocol on a Unix socket, kept running between sessions.

Owns starting, serving and ending the agent that stays on a node. The controller's
launcher runs `python3 <agent> serve --listen SOCKET --idle-timeout SECONDS` once; that
process detaches (double fork, its own session, stdio on /dev/null, stderr to
`SOCKET.log`), takes the lock `SOCKET.lock` (one resident agent per socket: a second start
finds it held and says `running`), replaces a stale socket file, listens, and only then
answers the launcher with one line on stdout:

    plumb-launch: started <pid>     a new resident agent is listening
    plumb-launch: running <pid>     one already held the lock (its socket is live)
    plumb-launch: failed <reason>   it could not listen

Every connection is a session of its own: the same JSON lines as `agent.serve` on stdio,
answered by a `serve.Server` in a thread, so a session never waits for another. A request
is cancelled when its connection ends under it (the controller died or its SSH connection
was cut): the running document's process group is killed, as when the stdio agent loses
its pipe. The agent exits after `--idle-timeout` seconds without a connection, on a
session's `shutdown` request (`plumb agent stop`), or on SIGTERM/SIGINT; a signal cancels
running documents first, `shutdown` lets them finish. It also ends when the controller notes
beside it (`SOCKET.refused`) that the SSH server refuses the channel to the socket.

The socket lives in the agent's cache directory and is created 0600 (umask 077) for the
node user; under `sudo`, the agent runs as root and hands the socket to SUDO_UID, so only
the user who may already run the agent as root can reach it. The socket's name carries the
agent's content hash: another agent version is another resident agent, and the old one
ends when its idle time runs out.

Standard library only, Python >= 3.9, POSIX (fork, Unix sockets).
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any, List, Optional, Set

from agent import serve as protocol

DEFAULT_IDLE_TIMEOUT = 3600.0
LOG_MAX_BYTES = 1024 * 1024
START_PREFIX = "plumb-launch: "
_TICK = 1.0


def main(argv: List[str]) -> int:
    """`serve --listen SOCKET [--idle-timeout SECONDS] [--foreground]`."""
    path, idle, foreground = _arguments(argv)
    if foreground:
        daemon = Daemon(path, idle)
        status = daemon.claim()
        if status != "started":
            print(START_PREFIX + status, flush=True)
            return 1 if status.startswith("failed") else 0
        print(START_PREFIX + "started %d" % os.getpid(), flush=True)
        return daemon.serve_forever()
    return _start_detached(path, idle)


def _arguments(argv: List[str]):
    path, idle, foreground = "", DEFAULT_IDLE_TIMEOUT, False
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag == "--listen" and args:
            path = args.pop(0)
        elif flag == "--idle-timeout" and args:
            try:
                idle = float(args.pop(0))
            except ValueError:
                idle = math.nan
            if not math.isfinite(idle):
                raise SystemExit("serve: --idle-timeout needs a number of seconds")
        elif flag == "--foreground":
            foreground = True
        else:
            raise SystemExit("serve: unexpected argument %r (serve [--listen SOCKET "
                             "[--idle-timeout SECONDS] [--foreground]])" % flag)
    if not path or not os.path.isabs(path):
        raise SystemExit("serve: --listen needs an absolute socket path")
    return path, max(idle, 1.0), foreground


def _start_detached(path: str, idle: float) -> int:
    """Fork the resident agent off this process and report how its start went."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answers:
            answer = answers.read().decode("utf-8", "replace").strip()
        os.waitpid(first, 0)
        print(START_PREFIX + (answer or "failed the agent ended before it listened"), flush=True)
        return 1 if not answer or answer.startswith("failed") else 0
    # The first child: a session of its own, then a grandchild that can never regain a
    # controlling terminal and is not the child of whatever started us (sshd reaps nothing).
    os.close(read_end)
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        daemon = Daemon(path, idle)
        status = daemon.claim()
        if status == "started":
            status = "started %d" % os.getpid()
            _detach_stdio(path + ".log", keep={write_end, daemon.fds()[0], daemon.fds()[1]})
        os.write(write_end, status.encode("utf-8"))
        os.close(write_end)
        if not status.startswith("started"):
            os._exit(0)
        code = daemon.serve_forever()
    except BaseException as err:  # never fall back into the caller's code in a child
        try:
            os.write(write_end, ("failed %s" % err).encode("utf-8", "replace"))
        except OSError:
            pass
        os._exit(1)
    os._exit(code)


def _detach_stdio(log_path: str, keep: Set[int]) -> None:
    """stdin/stdout on /dev/null, stderr to the log; every other inherited fd closed, so
    the SSH channel that started us ends as soon as the launcher does."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        if os.path.getsize(log_path) > LOG_MAX_BYTES:
            os.truncate(log_path, 0)
    except OSError:
        pass
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    for fd in (null, log):
        if fd > 2:
            os.close(fd)
    limit = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    for fd in range(3, min(limit, 65536)):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    os.chdir("/")


class Daemon:
    """One listening socket, its lock, and the sessions being served."""

    def __init__(self, path: str, idle: float) -> None:
        self.path, self.idle = path, idle
        self.listener: Optional[socket.socket] = None
        self.lock_fd = -1
        self.sessions: Set[protocol.Server] = set()
        self.guard = threading.Lock()
        self.last_active = time.monotonic()
        self.stopping = False
        self.signalled = False
        self.inode = 0
        self.started = time.time()

    def fds(self):
        return self.lock_fd, self.listener.fileno() if self.listener else -1

    def claim(self) -> str:
        """Take the lock and listen: "started", "running <pid>" or "failed <reason>"."""
        try:
            self.lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            return "failed cannot open %s.lock: %s" % (self.path, err.strerror)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return "failed cannot lock %s.lock: %s" % (self.path, err.strerror)
            return self._running()
        # The socket is made owner-only; the steps we run later keep the caller's umask.
        umask = os.umask(0o077)
        try:
            self._listen()
        except OSError as err:
            return "failed cannot listen on %s: %s" % (self.path, err.strerror or err)
        finally:
            os.umask(umask)
        os.ftruncate(self.lock_fd, 0)
        os.pwrite(self.lock_fd, str(os.getpid()).encode("ascii"), 0)
        return "started"

    def _running(self) -> str:
        """Another agent holds the lock: "running <pid>" once its socket answers (it may be
        a moment from listening), else "failed" (it is ending, or stuck)."""
        deadline = time.monotonic() + 5.0
        while True:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                holder = os.pread(self.lock_fd, 32, 0).decode("ascii", "replace").strip()
                return "running %s" % (holder or "?")
            except OSError as err:
                if time.monotonic() > deadline:
                    return "failed another agent holds %s.lock but %s does not answer: %s" % (
                        self.path, self.path, err.strerror or err)
            finally:
                probe.close()
            time.sleep(0.05)

    def _listen(self) -> None:
        # We hold the lock, so a socket file already there belongs to an agent that is gone.
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        owner = _sudo_owner()
        if owner is not None:
            for path in (self.path, self.path + ".lock"):
                os.chown(path, *owner)
        listener.listen(64)
        self.inode = os.stat(self.path).st_ino
        self.listener = listener

    def serve_forever(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        # SIGHUP is ignored through a handler, not SIG_IGN: an ignored signal stays ignored
        # across exec, and the steps we run must get the default dispositions.
        signal.signal(signal.SIGHUP, _ignore)
        try:
            while not self.stopping:
                try:
                    ready, _, _ = select.select([self.listener], [], [], _TICK)
                except InterruptedError:
                    continue
                if not ready:
                    # idle only with no connection waiting: one that came as the time ran out is served
                    if self._idle_for() >= self.idle or self._refused():
                        break
                    continue
                try:
                    conn, _ = self.listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                self.last_active = time.monotonic()
                threading.Thread(target=self._session, args=(conn,), daemon=True).start()
        finally:
            self._shutdown()
        return 0

    def _refused(self) -> bool:
        """The controller noted (SOCKET.refused, after we started) that the SSH server will
        not let it reach this socket: nobody can use us, so end."""
        try:
            return os.stat(self.path + ".refused").st_mtime >= self.started - 1.0
        except OSError:
            return False

    def _idle_for(self) -> float:
        with self.guard:
            if self.sessions:
                return 0.0
        return time.monotonic() - self.last_active

    def _session(self, conn: socket.socket) -> None:
        """Serve one connection until `exit` or its end, like the stdio agent."""
        reader, writer = conn.makefile("rb"), conn.makefile("wb")
        server = protocol.Server(writer)
        with self.guard:
            self.sessions.add(server)
        try:
            for raw in iter(reader.readline, b""):
                if not raw.strip():
                    continue
                server.cancel = threading.Event()   # each request starts uncancelled
                watch = _HangupWatch(conn, server)
                try:
                    going_on = server.handle(raw)
                finally:
                    watch.stop()
                if server.shutdown:
                    self.stopping = True   # the main loop ends us within a tick
                if not going_on or self.stopping:
                    break
        except OSError:
            pass  # the connection died between requests: nothing was running
        finally:
            with self.guard:
                self.sessions.discard(server)
                self.last_active = time.monotonic()
            for stream in (reader, writer, conn):
                try:
                    stream.close()
                except OSError:
                    pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = self.signalled = True   # only flags: the main loop sees them within a tick

    def _shutdown(self) -> None:
        """Stop listening, remove our socket (not a successor's), release the lock so a new
        agent can start at once, cancel running documents and let them answer."""
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except OSError:
            pass
        if self.listener is not None:
            self.listener.close()
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1
        if self.signalled:
            with self.guard:
                for server in self.sessions:
                    server.stopping = True
                    server.cancel.set()
        # Signalled: cancelled documents answer within moments. Asked by `shutdown` or idle:
        # what runs finishes (each step has its own timeout).
        deadline = time.monotonic() + 10.0 if self.signalled else math.inf
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _busy(self) -> bool:
        with self.guard:
            return any(server.busy for server in self.sessions)


class _HangupWatch:
    """While a request runs, watch its connection: if the controller's end closes, cancel
    the request (the running step's process group is killed, as with the stdio agent)."""

    def __init__(self, conn: socket.socket, server: protocol.Server) -> None:
        self.conn, self.server = conn, server
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.is_set():
            try:
                ready, _, _ = select.select([self.conn], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready or self.done.is_set():
                continue
            try:
                peeked = self.conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                peeked = b""
            if not peeked:
                self.server.cancel.set()
                return
            # The controller sends nothing while a request runs; data now is the next
            # request, read once this one is answered.
            self.done.wait()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def _ignore(signum: int, frame: Any) -> None:
    return None


def _sudo_owner():
    """(uid, gid) of the user who ran us through sudo, when we run as root for them."""
    if os.geteuid() != 0:
        return None
    try:
        return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", "-1"))
    except (KeyError, ValueError):
        return None
