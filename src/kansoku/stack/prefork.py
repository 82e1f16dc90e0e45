"""Service processes forked from one template that imported what they share.

Each kansoku service is its own process, but nine of them importing FastAPI, pydantic,
SQLAlchemy, OpenTelemetry and the kit each (about 90 MiB and a second of CPU apiece)
is most of the stack's memory and start-up. So the supervisor starts one *template*
process (`python -m kansoku.stack.prefork`) that imports the services' modules once,
moves everything it made out of the garbage collector's sight (`gc.freeze()`, so no
collection in a child writes to those pages), and then only forks: each service is a
child of the template whose memory stays shared, page for page, until the child writes
to it. It is the pre-fork model of gunicorn's arbiter and of Instagram's Django servers.

What a child must not share is made after the fork, by the service itself, exactly as
in `kansoku serve NAME`: its event loop, threads, listening sockets, connection pools,
OpenTelemetry providers (and so their exporters' threads and fork handlers), DuckDB.
The template makes none of them — it runs no event loop and no thread, and it checks
that no import started one (pyarrow starts a jemalloc thread at import, so the
explorer's modules are left to the explorer). The standard library reseeds `random` in
every child, so trace ids differ between services.

Each child is still a service process of its own: its own pid, session, log file and
`service.name`; it asks for SIGTERM when the template dies (the template gets SIGKILL
when the supervisor dies), so a killed supervisor still leaves no process holding a
port. The supervisor watches each child through a pidfd the template passes it, so a
pid reused by another process is never mistaken for the service, and signals it
through the same pidfd.

The protocol is JSON messages over a private `SOCK_SEQPACKET` socket pair (one message
a datagram): `fork` (name, command, log file, death signal) → `forked` (pid, with the pidfd
attached) or `failed`; the template also says `ready` once its imports are done and
`exited` (pid, exit code) when it reaps a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kansoku import topology

logger = logging.getLogger("kansoku.supervisor")

#: What the template imports: every service's app module but the explorer's (it imports
#: pyarrow, whose allocator starts a thread — and a thread must not be forked).
#: Then what building an app imports only when it runs (the database driver, the HTTP
#: stack of OpenTelemetry's exporters, httpx's transport), and the command line itself,
#: which a child runs (`kansoku serve NAME`). tests/stack/test_prefork.py checks that
#: building a service's app imports no package beyond these.
PRELOAD: tuple[str, ...] = (
    *(service.app_factory.split(":")[0] for service in topology.SERVICES
      if service.name != "explorer"),
    "asyncpg", "sqlalchemy.dialects.postgresql.asyncpg", "requests", "urllib3",
    "charset_normalizer", "certifi", "httpcore", "h11", "google.protobuf.json_format",
    "encodings.idna", "configparser", "getpass", "stringprep", "termios",
    "kansoku.cli",
)

#: What a child runs: a `kansoku` command (`serve NAME`, `migrate`), in the forked process.
#: Named, not imported: the command line imports the supervisor, which imports this.
DEFAULT_ENTRY = "kansoku.cli:run"

#: The largest message either side sends (a fork request names a log file).
MAX_MESSAGE_BYTES = 65536

#: How long the supervisor waits for the template's imports before starting services
#: the ordinary way (each importing everything itself).
READY_TIMEOUT_SECONDS = 60.0

#: How long after a child's pidfd says it ended the supervisor waits for the template
#: to report its exit code.
EXIT_CODE_WAIT_SECONDS = 2.0

_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


class ForkUnavailable(Exception):
    """The template cannot fork services (it failed to start, or is gone): start them
    the ordinary way."""


# -- the template process ---------------------------------------------------------------

def _send(sock: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def _thread_count() -> int:
    """Threads of this process as the kernel counts them: native ones included."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - not Linux
        import threading
        return threading.active_count()


class _Template:
    """The template's side: import, then fork on request and report exits."""

    def __init__(self, sock: socket.socket, entry: Callable[[list[str]], int]) -> None:
        self.sock = sock
        self.entry = entry
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        self.libc = ctypes.CDLL(None, use_errno=True)

    def run(self) -> None:
        signal.set_wakeup_fd(self.wake_write)
        # A handler (not SIG_DFL) so that SIGCHLD writes to the wakeup pipe.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        while True:
            readable, _, _ = select.select([self.sock.fileno(), self.wake_read], [], [])
            if self.wake_read in readable:
                os.read(self.wake_read, 4096)
            self._reap()
            if self.sock.fileno() in readable:
                data = self.sock.recv(MAX_MESSAGE_BYTES)
                if not data:
                    return  # the supervisor closed its end: stop
                self._fork(json.loads(data))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            with contextlib.suppress(OSError):
                _send(self.sock, {"op": "exited", "pid": pid,
                                  "code": os.waitstatus_to_exitcode(status)})

    def _fork(self, request: dict[str, Any]) -> None:
        template_pid = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            _send(self.sock, {"op": "failed", "id": request["id"], "error": str(exc)})
            return
        if pid == 0:  # pragma: no cover - the child, which never returns
            self._become(request, template_pid)
        # Opened before the child can be reaped (only this process reaps it, and only
        # in _reap), so the pidfd is this child's and no other's.
        pidfd = os.pidfd_open(pid)
        try:
            _send(self.sock, {"op": "forked", "id": request["id"], "pid": pid}, [pidfd])
        finally:
            os.close(pidfd)

    def _become(self, request: dict[str, Any], template_pid: int
                ) -> None:  # pragma: no cover - runs in the child
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (self.wake_read, self.wake_write):
                os.close(fd)
            self.sock.close()
            os.setsid()
            # SIGTERM (the service's clean stop) when the template dies; it dies with the
            # supervisor, so a killed supervisor leaves nothing holding a port.
            self.libc.prctl(_PR_SET_PDEATHSIG, int(request["death_signal"]))
            if os.getppid() != template_pid:
                os._exit(1)  # the template died before the request took effect
            # `ps`/`top` show the component's name (the command line stays the template's).
            self.libc.prctl(_PR_SET_NAME, f"kansoku-{request['name']}"[:15].encode())
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(null)
            os.close(log)
            arguments: list[str] = request["arguments"]
            sys.argv = ["kansoku", *arguments]
            gc.enable()  # the template's objects stay frozen; the child's are collected
            code = self.entry(arguments)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)


def _load_entry(path: str) -> Callable[[list[str]], int]:
    module, _, name = path.partition(":")
    entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), name)
    return entry


def template_main(argv: list[str]) -> int:
    """`python -m kansoku.stack.prefork FD ENTRY MODULE…`: import, freeze, then fork."""
    # No collection while importing: one would free objects and leave holes in pages
    # that a child then fills — writing to, and so copying, a page it could have shared.
    # (The recipe of gc.freeze()'s documentation: disable early, freeze before forking,
    # enable in the child.)
    gc.disable()
    sock = socket.socket(fileno=int(argv[0]))
    entry_path, preload = argv[1], argv[2:]
    began = time.process_time()
    try:
        entry = _load_entry(entry_path)
        for module in preload:
            importlib.import_module(module)
    except BaseException as exc:
        _send(sock, {"op": "broken", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    threads = _thread_count()
    if threads != 1:
        # Forking a process with other threads copies their locks but not the threads:
        # a child could deadlock. Say so, and let the supervisor start services itself.
        _send(sock, {"op": "broken",
                     "error": f"{threads} threads after the imports; forking is unsafe"})
        return 1
    # What the imports made lives as long as every service: out of the collector's
    # sight, so no collection in a child touches (and so copies) those pages.
    gc.freeze()
    _send(sock, {"op": "ready", "modules": len(sys.modules),
                 "seconds": round(time.process_time() - began, 3)})
    _Template(sock, entry).run()
    return 0


# -- the supervisor's side --------------------------------------------------------------

class ForkedProcess:
    """A service the template forked, as the supervisor handles it: the part of
    `asyncio.subprocess.Process` it uses (pid, returncode, wait, send_signal, kill),
    through the child's pidfd."""

    def __init__(self, pid: int, pidfd: int, forker: Forker) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd: int | None = pidfd
        self._forker = forker
        self._ended = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(pidfd, self._on_end)

    def _on_end(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pidfd is not None:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        # The process has ended; its exit code comes from the template that reaps it.
        task = loop.create_task(self._forker.exit_code(self.pid))
        task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Task[int | None]) -> None:
        code = None if task.cancelled() or task.exception() else task.result()
        # Unknown only if the template went away first: the child died with it.
        self.returncode = code if code is not None else -signal.SIGTERM
        if not self._ended.done():
            self._ended.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def send_signal(self, signum: int) -> None:
        if self._pidfd is None:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Forker:
    """The supervisor's handle on the template: start it, wait until it has imported
    everything, ask it for services; `close` ends it (its children carry on until the
    supervisor stops them)."""

    def __init__(self, env: dict[str, str], log_file: Path, *,
                 preload: Sequence[str] = PRELOAD, entry: str = DEFAULT_ENTRY,
                 child_setup: Callable[[], None] | None = None) -> None:
        """`env` is the services' environment (the template's, so every child's);
        `child_setup` runs in the template between fork and exec (the supervisor's
        parent-death signal)."""
        self.env = env
        self.log_file = log_file
        self.preload = list(preload)
        self.entry = entry
        self.child_setup = child_setup
        self.process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._exit_codes: dict[int, asyncio.Future[int]] = {}
        self._next_id = 0
        self.broken: str | None = None

    @property
    def alive(self) -> bool:
        return self._sock is not None and self.broken is None

    def start(self) -> None:
        """Start the template (it imports in the background; `ready` waits for it)."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log, theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kansoku.stack.prefork", str(theirs.fileno()),
                 self.entry, *self.preload],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, pass_fds=[theirs.fileno()], start_new_session=True,
                preexec_fn=self.child_setup)
        ours.setblocking(False)
        self._sock = ours
        self.broken = None
        self._ready = loop.create_future()
        loop.add_reader(ours, self._receive)
        logger.info("started the services' template (pid %s), importing %d modules",
                    self.process.pid, len(self.preload))

    async def ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until the template can fork; `ForkUnavailable` if it cannot."""
        if self._ready is None or not self.alive:
            raise ForkUnavailable(self.broken or "the template is not running")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            self._gone(f"not ready within {timeout:g}s")
            raise ForkUnavailable(self.broken) from None

    async def fork(self, name: str, arguments: list[str], log_file: Path, death_signal: int
                   ) -> ForkedProcess:
        """A new process forked from the template, running `kansoku ARGUMENTS…` (for the
        component `name`), logging to `log_file`."""
        await self.ready()
        assert self._sock is not None
        self._next_id += 1
        request_id = self._next_id
        answer: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            _send(self._sock, {"op": "fork", "id": request_id, "name": name,
                               "arguments": arguments, "log": str(log_file),
                               "death_signal": int(death_signal)})
            pid, pidfd = await asyncio.wait_for(answer, 10)
        except (OSError, TimeoutError) as exc:
            raise ForkUnavailable(f"fork of {name} failed: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)
        return ForkedProcess(pid, pidfd, self)

    async def exit_code(self, pid: int) -> int | None:
        """The exit code the template reported for child `pid` (it reaps them), waiting
        a moment for the report; None if none comes (the template is gone)."""
        code = self._exit_codes.setdefault(pid, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(code, EXIT_CODE_WAIT_SECONDS)
        except TimeoutError:
            return None
        finally:
            self._exit_codes.pop(pid, None)

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, MAX_MESSAGE_BYTES, 1)
            except BlockingIOError:
                return
            except OSError as exc:
                self._gone(f"its socket failed: {exc}")
                return
            if not data:
                self._gone("it exited")
                return
            self._handle(json.loads(data), fds)

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        match message["op"]:
            case "ready":
                logger.info("the services' template is ready: %s modules in %ss of CPU",
                            message["modules"], message["seconds"])
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
            case "forked":
                answer = self._pending.get(message["id"])
                if answer is not None and not answer.done() and fds:
                    answer.set_result((message["pid"], fds[0]))
                else:
                    for fd in fds:
                        os.close(fd)
            case "failed":
                answer = self._pending.get(message["id"])
                if answer is not None and not answer.done():
                    answer.set_exception(OSError(message["error"]))
            case "exited":
                code = self._exit_codes.setdefault(
                    message["pid"], asyncio.get_running_loop().create_future())
                if not code.done():
                    code.set_result(message["code"])
            case "broken":
                self._gone(message["error"])
            case other:
                logger.warning("the services' template said %r, which means nothing here",
                               other)

    def _gone(self, why: str) -> None:
        """The template cannot fork any more: say why, and let callers fall back."""
        if self.broken is None:
            logger.warning("the services' template cannot fork services (%s): they start "
                           "on their own instead", why)
        self.broken = why
        if self.process is not None:
            self.process.poll()  # reaped, if it has ended, rather than left a zombie
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock)
            self._sock.close()
            self._sock = None
        for waiting in [self._ready, *self._pending.values()]:
            if waiting is not None and not waiting.done():
                waiting.set_exception(ForkUnavailable(why))
        if self._ready is not None and self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: nobody may be waiting for it

    async def close(self) -> None:
        """End the template (closing its socket is its signal to go) and wait for it."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock)
            self._sock.close()
            self._sock = None
        process, self.process = self.process, None
        if process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 5)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)


if __name__ == "__main__":  # pragma: no cover - the template process
    sys.exit(template_main(sys.argv[1:]))
