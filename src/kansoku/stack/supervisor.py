"""The process supervisor behind `kansoku up`.

It starts the stack in dependency order — infrastructure, then migrations and the
explorer, then the services — waits until each is ready, restarts any that crash (with
exponential backoff, counted in the state file and logged), and on SIGTERM/SIGINT stops
everything in reverse order. It runs as its own process (`kansoku supervise`), so the
stack outlives the terminal with `--detach`.

While running, it also obeys `kansoku stop NAME` / `kansoku start NAME` (see
`kansoku.stack.control`): a component the user stopped is *held* — not restarted —
until the user starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil

from kansoku import topology
from kansoku.faults import flagfile
from kansoku.kit.i18n import N_, Phrase, PhrasedError, Words, _, in_english
from kansoku.loadgen.browser_setup import browser_synthetic
from kansoku.stack import control, infra
from kansoku.stack.prefork import ForkedProcess, Forker, ForkUnavailable
from kansoku.stack.settings import LOOPBACK, StackSettings
from kansoku.stack.state import write_state

logger = logging.getLogger("kansoku.supervisor")

Probe = Callable[[], Awaitable[None]]
Kind = Literal["infrastructure", "service"]

#: Restart delays grow 0.5 s, 1 s, 2 s … up to this; a component that then runs for
#: STABLE_SECONDS starts again from the shortest delay.
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0
HEALTH_INTERVAL_SECONDS = 2.0
STOP_TIMEOUT_SECONDS = 15.0
MIGRATION_TIMEOUT_SECONDS = 300.0


class StartupFailed(PhrasedError):
    """A component could not be started or did not become ready in time. Its words go
    to `kansoku up` in the language it was started in (the state file's `error`), and
    to the supervisor's log in English."""


class StopRequested(Exception):
    """A stop signal arrived while the stack was still starting."""


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


#: Looked up once in the supervisor: between fork and exec the child may only do
#: simple things, and loading a library is not one of them.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _child_setup(run_as: tuple[int, int] | None, death_signal: signal.Signals
                 ) -> Callable[[], None]:
    """What a child does between fork and exec: drop to `run_as` (uid, gid) if given,
    then ask Linux to send it `death_signal` when the supervisor dies — even by SIGKILL —
    so a killed supervisor never leaves orphans holding the ports.

    The privilege drop happens here, not through Popen's `user=`, because Linux clears
    the parent-death signal when the user id changes: the order matters.
    """

    supervisor_pid = os.getpid()

    def setup() -> None:  # pragma: no cover - runs in the child before exec
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as[1])
            os.setuid(run_as[0])
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, death_signal)
            if os.getppid() != supervisor_pid:
                # The supervisor died before the request took effect: do not start.
                os._exit(1)

    return setup


@dataclass
class Component:
    name: str
    kind: Kind
    command: list[str]
    url: str
    probe: Probe
    log_file: Path
    #: How clients connect, credentials included; never shown or written to the state.
    client_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    run_as: tuple[int, int] | None = None
    #: Signal for a clean stop: PostgreSQL's fast shutdown is SIGINT.
    stop_signal: signal.Signals = signal.SIGTERM
    #: Runs (in a thread) before the first start, e.g. initdb.
    prepare: Callable[[], None] | None = None
    #: Runs once after the first time the component is ready, e.g. CREATE DATABASE.
    after_ready: Probe | None = None
    #: The service to fork from the template (`stack/prefork.py`) instead of running
    #: `command`, when the supervisor has one; `command` remains the way without.
    forked_service: str | None = None

    process: asyncio.subprocess.Process | ForkedProcess | None = None
    state: str = "pending"
    health: str = "unknown"
    restarts: int = 0
    last_exit: int | None = None
    started_at: float | None = None
    #: The OS's start time of the current process, so a stale pid is never mistaken for it.
    process_started: float | None = None
    #: Stopped by the user (`kansoku stop NAME`): not restarted until `kansoku start NAME`.
    held: bool = False
    #: Serialises the user's stops and starts of this component, in the order made.
    control_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def describe(self) -> dict[str, Any]:
        alive = self.process is not None and self.process.returncode is None
        return {
            "name": self.name, "kind": self.kind, "url": self.url,
            "pid": self.process.pid if alive and self.process else None,
            "process_started": self.process_started if alive else None,
            "state": self.state, "health": self.health, "restarts": self.restarts,
            "held": self.held, "last_exit": self.last_exit, "log": str(self.log_file),
        }


class HealthClient:
    """The one HTTP client every health probe of the supervisor goes through.

    A probe every 2 s per service (and every 0.1 s while one starts) with a client of
    its own each time cost an SSL context and a connection apiece — 0.12 cores at idle;
    shared, it keeps one connection per service alive. Made on first use in the running
    event loop (again if the loop is another, as in tests), closed when the supervisor
    stops."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                timeout=2.0,
                # Kept between probes (every 2 s), closed well before a service would
                # close it (kit.serve's keep-alive).
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64,
                                    keepalive_expiry=10.0))
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()


#: Shared by every `http_probe`.
HEALTH_CLIENT = HealthClient()


def http_probe(url: str) -> Probe:
    async def probe() -> None:
        response = await HEALTH_CLIENT.client().get(url)
        if response.status_code != 200:
            raise ConnectionError(f"{url} answered {response.status_code}")
    return probe


class Supervisor:
    def __init__(self, settings: StackSettings, components: list[list[Component]],
                 migrate: list[str] | None, *, prefork: bool = False) -> None:
        """`components` are start groups: each group starts at once, after the one before
        is ready. `migrate`, if given, runs to completion after the first group. With
        `prefork`, the components that name a `forked_service` are forked from one
        template process (`stack/prefork.py`), started first thing."""
        self.settings = settings
        self.groups = components
        self.migrate = migrate
        self.forker: Forker | None = None
        forked = [c for c in self.components if c.forked_service is not None]
        if prefork and forked:
            self.forker = Forker({**os.environ, **forked[0].env},
                                 settings.log_dir / "template.log",
                                 child_setup=_child_setup(None, signal.SIGKILL))
        self.stopping = asyncio.Event()
        self.phase = "starting"
        #: What start-up is doing now, in words, for the progress display.
        self.step = "starting"
        self.error: str | None = None
        #: Each running component's watcher, which restarts it when it exits.
        self._watchers: dict[str, asyncio.Task[None]] = {}
        #: Set by SIGUSR1: request files are waiting in the run directory.
        self._requests_waiting = asyncio.Event()
        self._request_tasks: set[asyncio.Task[None]] = set()
        self._process_started = psutil.Process().create_time()
        self._template_started: float | None = None
        #: Whether the synthetics, started with this process's environment, can run the
        #: browser journey: kept in the state file for `kansoku status`, which would
        #: otherwise read the synthetics' settings itself (pydantic-settings: most of its
        #: start) — and read them from its own shell's environment, not the stack's.
        self.browser_synthetic = browser_synthetic()

    @property
    def components(self) -> list[Component]:
        return [component for group in self.groups for component in group]

    # -- state ----------------------------------------------------------------------

    def save_state(self) -> None:
        """Write the state file. It informs `status`; failing to write it (a full disk)
        is logged and must never stop the supervisor from supervising."""
        try:
            self._write_state()
        except OSError as exc:
            logger.warning("could not write %s: %s", self.settings.state_file, exc)

    def _write_state(self) -> None:
        template = self.forker.process if self.forker is not None else None
        write_state(self.settings.state_file, {
            "supervisor": {
                "pid": os.getpid(), "process_started": self._process_started,
                "state": self.phase, "step": self.step, "error": self.error,
                "data_dir": str(self.settings.data_dir), "updated_at": time.time(),
                "template_pid": template.pid if template else None,
                "template_started": self._template_started,
            },
            "components": [component.describe() for component in self.components],
            "browser_synthetic": asdict(self.browser_synthetic),
        })

    def _set(self, component: Component, state: str) -> None:
        component.state = state
        self.save_state()

    # -- running ----------------------------------------------------------------------

    async def run(self) -> int:
        """Start everything, keep it running until asked to stop, then stop it all."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        # Installed first thing: SIGUSR1's default action would end the supervisor.
        loop.add_signal_handler(signal.SIGUSR1, self._requests_waiting.set)
        control.clear_requests(self.settings.run_dir)
        self._start_template()
        self.save_state()
        exit_code = 0
        try:
            await self._start_everything()
            self.phase = "running"
            self.save_state()
            logger.info("all components are ready")
            background = [asyncio.create_task(self._watch_health()),
                          asyncio.create_task(self._serve_requests())]
            await self.stopping.wait()
            for task in background:
                task.cancel()
        except StartupFailed as exc:
            self.phase, self.error = "failed", str(exc)
            logger.error("start-up failed: %s", in_english(exc.words))
            exit_code = 1
        except StopRequested:
            logger.info("asked to stop while starting")
        finally:
            await self._stop_everything()
            if self.forker is not None:
                await self.forker.close()
            await HEALTH_CLIENT.aclose()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
                loop.remove_signal_handler(signum)
        return exit_code

    def _start_template(self) -> None:
        """Start the services' template now, so that it imports while the
        infrastructure starts; a template that cannot start leaves the services to
        start the ordinary way."""
        if self.forker is None:
            return
        try:
            self.forker.start()
        except OSError as exc:
            logger.warning("could not start the services' template (%s): the services "
                           "start on their own", exc)
            self.forker = None
            return
        assert self.forker.process is not None
        with contextlib.suppress(psutil.Error):
            self._template_started = psutil.Process(self.forker.process.pid).create_time()

    async def _start_everything(self) -> None:
        # A stack starts with every fault flag off (a fault left on from the last run
        # would be a surprise), and the services find the file they watch.
        try:
            flagfile.reset(self.settings.data_dir / "flags.json")
        except OSError as exc:
            logger.warning("could not write the fault flags file: %s", exc)
        for index, group in enumerate(self.groups):
            if self.stopping.is_set():
                raise StopRequested
            # What `up` shows while it waits: in the language it was started in.
            self.step = _("starting {components}").format(
                components=", ".join(component.name for component in group))
            await self._start_group(group)
            if index == 0 and self.migrate:
                self.step = _("creating schemas and demo data")
                self.save_state()
                await self._run_migrations()

    async def _start_group(self, group: list[Component]) -> None:
        results = await asyncio.gather(*(self._start_first_time(c) for c in group),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, StartupFailed | StopRequested):
                raise result
            if isinstance(result, BaseException):
                raise StartupFailed(str(result))

    async def _start_first_time(self, component: Component) -> None:
        if component.prepare is not None:
            self._set(component, "preparing")
            try:
                await asyncio.to_thread(component.prepare)
            except Exception as exc:
                self._set(component, "failed")
                raise StartupFailed(Phrase(N_("{component}: {error}"),
                                           component=component.name, error=str(exc))) from exc
        await self._spawn(component)
        await self._wait_ready(component, self.settings.ready_timeout)
        if component.after_ready is not None:
            await component.after_ready()
        self._set(component, "running")
        self._start_watching(component)

    def _start_watching(self, component: Component) -> None:
        watcher = asyncio.create_task(self._watch(component))
        watcher.add_done_callback(self._watcher_ended)
        self._watchers[component.name] = watcher

    def _watcher_ended(self, watcher: asyncio.Task[None]) -> None:
        if not watcher.cancelled() and watcher.exception() is not None:
            logger.error("a component watcher failed; that component is no longer "
                         "restarted", exc_info=watcher.exception())

    async def _spawn(self, component: Component) -> None:
        component.log_file.parent.mkdir(parents=True, exist_ok=True)
        with component.log_file.open("ab") as log:
            log.write(f"--- kansoku: starting {component.name} at {time.ctime()} ---\n".encode())
            log.flush()
        component.process = await self._fork(component)
        if component.process is None:
            component.process = await self._execute(component)
        component.started_at = time.monotonic()
        with contextlib.suppress(psutil.Error):
            component.process_started = psutil.Process(component.process.pid).create_time()
        self._set(component, "starting")
        logger.info("started %s (pid %s)", component.name, component.process.pid,
                    extra={"component": component.name, "pid": component.process.pid})

    async def _fork(self, component: Component) -> ForkedProcess | None:
        """The component's process forked from the template, or None to run its command
        instead (not a forked service, no template, or the template cannot fork)."""
        if component.forked_service is None or self.forker is None or not self.forker.alive:
            return None
        try:
            return await self.forker.fork(component.name, ["serve", component.forked_service],
                                          component.log_file, component.stop_signal)
        except ForkUnavailable as exc:
            logger.warning("%s starts on its own: %s", component.name, exc,
                           extra={"component": component.name})
            return None

    async def _execute(self, component: Component) -> asyncio.subprocess.Process:
        """The component's process, running its command."""
        with component.log_file.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                *component.command,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **component.env},
                # Own session: a Ctrl-C in the terminal reaches the supervisor only, which
                # then stops everything in order.
                start_new_session=True,
                preexec_fn=_child_setup(component.run_as, component.stop_signal),
            )

    async def _wait_ready(self, component: Component, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Words = Phrase(N_("no answer yet"))
        assert component.process is not None
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise StopRequested
            if component.process.returncode is not None:
                component.last_exit = component.process.returncode
                self._set(component, "failed")
                raise StartupFailed(Phrase(
                    N_("{component} exited with code {code} while starting — see "
                       "{log}{last_line}"), component=component.name,
                    code=component.process.returncode, log=str(component.log_file),
                    last_line=_log_tail(component.log_file)))
            try:
                await asyncio.wait_for(component.probe(), 3)
                component.health = "healthy"
                return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.1)
        self._set(component, "failed")
        raise StartupFailed(Phrase(N_("{component} was not ready within {seconds}s ({error}) "
                                      "— see {log}"), component=component.name,
                                   seconds=f"{timeout:g}", error=last_error,
                                   log=str(component.log_file)))

    async def _run_migrations(self) -> None:
        assert self.migrate is not None
        log_file = self.settings.log_dir / "migrate.log"
        logger.info("running migrations and demo data")
        process: asyncio.subprocess.Process | ForkedProcess | None = None
        if self.forker is not None and self.forker.alive:
            # Forked like a service: the services' modules (which the demo data needs)
            # are imported already.
            with contextlib.suppress(ForkUnavailable):
                process = await self.forker.fork("migrate", ["migrate"], log_file,
                                                 signal.SIGTERM)
        if process is None:
            with log_file.open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *self.migrate, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **self._service_env()}, start_new_session=True,
                    preexec_fn=_child_setup(None, signal.SIGTERM),
                )
        finished = asyncio.create_task(process.wait())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({finished, stop}, timeout=MIGRATION_TIMEOUT_SECONDS,
                           return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not finished.done():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await finished
            if self.stopping.is_set():
                raise StopRequested
            raise StartupFailed(Phrase(N_("migrations did not finish within {seconds}s — see "
                                          "{log}"), seconds=f"{MIGRATION_TIMEOUT_SECONDS:g}",
                                       log=str(log_file)))
        code = finished.result()
        if code != 0:
            raise StartupFailed(Phrase(N_("migrations failed (exit {code}) — see "
                                          "{log}{last_line}"), code=code, log=str(log_file),
                                       last_line=_log_tail(log_file)))

    def _service_env(self) -> dict[str, str]:
        for component in self.components:
            if component.kind == "service":
                return component.env
        return {}

    # -- watching ---------------------------------------------------------------------

    async def _watch(self, component: Component) -> None:
        """Restart `component` whenever it exits, until the stack stops."""
        backoff = 0.5
        while True:
            assert component.process is not None
            code = await component.process.wait()
            if self.stopping.is_set():
                return
            component.last_exit = code
            component.health = "down"
            ran_for = time.monotonic() - (component.started_at or 0)
            if ran_for > STABLE_SECONDS:
                backoff = 0.5
            component.restarts += 1
            self._set(component, "restarting")
            logger.warning(
                "%s exited with code %s; restarting in %.1fs (restart %d)",
                component.name, code, backoff, component.restarts,
                extra={"component": component.name, "exit_code": code,
                       "restarts": component.restarts},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            if self.stopping.is_set():
                return
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            try:
                await self._spawn(component)
                await self._wait_ready(component, self.settings.ready_timeout)
            except StopRequested:
                return
            except Exception as exc:
                logger.error("restart of %s failed: %s", component.name, exc)
                if component.process is not None and component.process.returncode is None:
                    await self._stop(component, final_state="failed")
                # Wait out the backoff again by looping on the (exited) process.
                continue
            self._set(component, "running")
            logger.info("%s is running again", component.name)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
            changed = False
            for component in self.components:
                if component.state != "running":
                    continue
                try:
                    await asyncio.wait_for(component.probe(), 2)
                    health = "healthy"
                except Exception:
                    health = "unhealthy"
                if component.state != "running":
                    continue  # stopped or crashed while probed: that path set its health
                if health != component.health:
                    component.health, changed = health, True
                    logger.info("%s is %s", component.name, health)
            if changed:
                self.save_state()

    # -- the user's stop and start ----------------------------------------------------

    async def _serve_requests(self) -> None:
        """Carry out `kansoku stop NAME` / `kansoku start NAME` while the stack runs.

        SIGUSR1 wakes this loop; it takes every waiting request file, oldest first. Each
        request runs as its own task, so stopping one component does not wait for another
        to become ready; the component's lock keeps requests for the *same* component in
        the order they were made (asyncio locks are first come, first served).
        """
        self._requests_waiting.set()  # requests made while the stack was starting
        while True:
            await self._requests_waiting.wait()
            self._requests_waiting.clear()
            try:
                requests = control.take_requests(self.settings.run_dir)
            except Exception:
                # This loop must outlive one bad look into the folder, or no later stop
                # or start would ever be carried out.
                logger.exception("could not read the stop/start requests")
                continue
            for request in requests:
                task = asyncio.create_task(self._carry_out(request))
                self._request_tasks.add(task)
                task.add_done_callback(self._request_done)

    def _request_done(self, task: asyncio.Task[None]) -> None:
        self._request_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a stop or start request failed", exc_info=task.exception())

    async def _carry_out(self, request: control.Request) -> None:
        component = next((c for c in self.components if c.name == request.component), None)
        if component is None:
            logger.warning("asked to %s %r, which is not a component of this stack",
                           request.action, request.component)
            return
        async with component.control_lock:
            if self.stopping.is_set():
                return
            if request.action == "stop":
                await self._hold(component)
            else:
                await self._release(component)

    async def _hold(self, component: Component) -> None:
        """Stop `component` and keep it stopped: its watcher goes first, so the exit
        this causes is not mistaken for a crash and restarted."""
        if component.held:
            return
        component.held = True
        logger.info("stopping %s: asked by the user", component.name,
                    extra={"component": component.name})
        watcher = self._watchers.pop(component.name, None)
        if watcher is not None:
            watcher.cancel()
            # The watcher may be mid-restart; once it is gone, nothing else starts a
            # process for this component, so what _stop sees is the last one.
            await asyncio.gather(watcher, return_exceptions=True)
        await self._stop(component)
        component.health = "down"
        self._set(component, "stopped")
        logger.info("%s is stopped and stays stopped until 'kansoku start %s'",
                    component.name, component.name, extra={"component": component.name})

    async def _release(self, component: Component) -> None:
        """Start a held component again and wait until it is ready, like the first start
        (but without the first start's preparation: the data is already there)."""
        if not component.held:
            return
        component.held = False
        logger.info("starting %s: asked by the user", component.name,
                    extra={"component": component.name})
        try:
            await self._spawn(component)
            await self._wait_ready(component, self.settings.ready_timeout)
        except StopRequested:
            return
        except Exception as exc:
            # From here on it is a crashed component like any other: the watcher
            # restarts it with backoff, and `kansoku start` reports the failure.
            logger.error("start of %s failed: %s", component.name, exc,
                         extra={"component": component.name})
            if component.process is not None and component.process.returncode is None:
                await self._stop(component, final_state="failed")
        else:
            self._set(component, "running")
            logger.info("%s is running again", component.name,
                        extra={"component": component.name})
        self._start_watching(component)

    # -- stopping ---------------------------------------------------------------------

    async def _stop_everything(self) -> None:
        self.stopping.set()
        if self.phase != "failed":
            self.phase = "stopping"
        self.save_state()
        # A user's stop or start under way is abandoned: everything stops now anyway.
        for task in [*self._watchers.values(), *self._request_tasks]:
            task.cancel()
        await asyncio.gather(*self._request_tasks, return_exceptions=True)
        for group in reversed(self.groups):
            await asyncio.gather(*(self._stop(component) for component in group))
        if self.phase != "failed":
            self.phase = "stopped"
        self.save_state()
        logger.info("stack stopped")

    async def _stop(self, component: Component, final_state: str = "stopped") -> None:
        """Stop the component's process: its clean-stop signal, SIGKILL after
        STOP_TIMEOUT_SECONDS. `final_state` is what the state file then says."""
        process = component.process
        if process is None or process.returncode is not None:
            component.state = component.state if component.state == "failed" else final_state
            return
        self._set(component, "stopping")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(component.stop_signal)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("%s did not stop in %ss; killing it", component.name,
                           STOP_TIMEOUT_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        component.health = "down"
        self._set(component, final_state)


def _log_tail(path: Path) -> Phrase | str:
    """The log's last line, to end a one-line error with what the component last said."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return Phrase(N_(" (last line: {line})"), line=lines[-1].strip()[:300]) if lines else ""


# -- the stack's components ------------------------------------------------------------

def _postgresql(settings: StackSettings, secret: str) -> Component:
    host, port = LOOPBACK, settings.postgres_port
    bin_dir = infra.postgres_bin_dir(settings.postgres_bin_dir)
    pgdata = settings.data_dir / "postgres"
    return Component(
        "postgresql", "infrastructure", infra.postgres_command(bin_dir, pgdata, host, port),
        f"postgresql://{host}:{port}/{topology.DATABASE_NAME}",
        lambda: infra.probe_postgres(host, port, secret), settings.log_dir / "postgresql.log",
        client_url=infra.postgres_url(host, port, secret),
        run_as=infra.postgres_run_as(), stop_signal=signal.SIGINT,
        prepare=lambda: infra.prepare_postgres(pgdata, bin_dir, secret),
        after_ready=lambda: infra.create_database(host, port, secret),
    )


def _nats(settings: StackSettings, secret: str) -> Component:
    host, port = LOOPBACK, settings.nats_port
    binary = infra.nats_server_bin(settings.nats_server_bin)
    store = settings.data_dir / "nats"
    return Component(
        "nats", "infrastructure", infra.nats_command(binary, store, host, port, secret),
        f"nats://{host}:{port}", lambda: infra.probe_nats(host, port),
        settings.log_dir / "nats.log", client_url=f"nats://{secret}@{host}:{port}",
        prepare=lambda: store.mkdir(parents=True, exist_ok=True),
    )


def _valkey(settings: StackSettings, secret: str) -> Component:
    host, port = LOOPBACK, settings.valkey_port
    binary = infra.valkey_server_bin(settings.valkey_server_bin)
    valkey_dir = settings.data_dir / "valkey"
    client_url = f"redis://:{secret}@{host}:{port}/0"
    return Component(
        "valkey", "infrastructure",
        infra.valkey_command(binary, valkey_dir, host, port, secret),
        f"redis://{host}:{port}/0", lambda: infra.probe_valkey(client_url),
        settings.log_dir / "valkey.log", client_url=client_url,
    )


def service_environment(settings: StackSettings, infrastructure: list[Component],
                        stack_secret: str) -> dict[str, str]:
    """What every service process is told: where the infrastructure, the other services
    and the telemetry backend are, and the secret services get their own tokens with."""
    embedded = {component.name: component.client_url or component.url
                for component in infrastructure}
    env = {
        "KANSOKU_DATABASE_URL": settings.database_url or embedded["postgresql"],
        "KANSOKU_NATS_URL": settings.nats_url or embedded["nats"],
        "KANSOKU_REDIS_URL": settings.redis_url or embedded["valkey"],
        "KANSOKU_HOST": settings.host,
        "KANSOKU_EXPLORER_OTLP_PORT": str(settings.explorer_otlp_port),
        "KANSOKU_WORKER_SMTP_PORT": str(settings.worker_smtp_port),
        # The explorer keeps its telemetry store with the rest of the stack's data.
        "KANSOKU_EXPLORER_DB_PATH": str(
            (settings.data_dir / "explorer" / "telemetry.duckdb").absolute()),
        # The fault flags (flagd's JSON format), read by every service, written by
        # `kansoku flags` and the admin pages.
        "KANSOKU_FLAGS_FILE": str((settings.data_dir / "flags.json").absolute()),
        # The user's alert rules and SLOs; the explorer's packaged defaults when absent.
        "KANSOKU_EXPLORER_ALERTS_FILE": str((settings.data_dir / "alerts.yaml").absolute()),
        # Derived from the stack's secret rather than equal to it: a service token
        # secret that leaks does not open the databases.
        "KANSOKU_SERVICE_SECRET": os.environ.get(
            "KANSOKU_SERVICE_SECRET", infra.derived_secret(stack_secret, "service-tokens")),
        "PYTHONUNBUFFERED": "1",
        # Telemetry goes to the embedded explorer unless the user chose a backend.
        "OTEL_EXPORTER_OTLP_ENDPOINT": os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT",
                                                      settings.otlp_endpoint),
        "OTEL_METRIC_EXPORT_INTERVAL": os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "10000"),
        # Spans leave every second rather than every five: a learner looks for the trace
        # of what they just did, and exports are batched all the same.
        "OTEL_BSP_SCHEDULE_DELAY": os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "1000"),
        # An export that takes longer than this is to a backend that is gone; a service
        # shutting down should not wait the default ten seconds per signal for it.
        "OTEL_EXPORTER_OTLP_TIMEOUT": os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "5"),
    }
    for service in topology.SERVICES:
        env[topology.port_variable(service.name)] = str(settings.service_port(service.name))
        env[topology.url_variable(service.name)] = settings.service_url(service.name)
    env.update(_vendor_intakes(settings))
    return env


def _vendor_intakes(settings: StackSettings) -> dict[str, str]:
    """Where services on a vendor's approach report: the explorer's intakes on the ports
    it listens on (a second stack on the machine, or a port moved, still gets its own
    services' data), unless the user pointed the vendor elsewhere."""
    host = settings.connect_host
    found: dict[str, str] = {}
    if settings.explorer_xray_port is not None and "AWS_XRAY_DAEMON_ADDRESS" not in os.environ:
        found["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{settings.explorer_xray_port}"
    if settings.explorer_emf_port is not None and "AWS_EMF_AGENT_ENDPOINT" not in os.environ:
        found["AWS_EMF_AGENT_ENDPOINT"] = f"udp://{host}:{settings.explorer_emf_port}"
    # The agent's collector is a host and a port: either both the explorer's, or what
    # the user set (New Relic itself, with its own port).
    if settings.explorer_newrelic_port is not None and not (
            {"NEW_RELIC_HOST", "NEW_RELIC_PORT"} & os.environ.keys()):
        found["NEW_RELIC_HOST"] = host
        found["NEW_RELIC_PORT"] = str(settings.explorer_newrelic_port)
    return found


def build_components(settings: StackSettings) -> list[list[Component]]:
    """The start groups for this configuration: embedded infrastructure (what is not
    external), then the explorer, then the shop's services, then the monitors (the
    synthetic journeys, which need the shop ready).

    Raises `infra.BinaryMissing` if an embedded server's binary is missing.
    """
    secret = infra.stack_secret(settings.secret_file)
    infrastructure = []
    if settings.database_url is None:
        infrastructure.append(_postgresql(settings, secret))
    if settings.nats_url is None:
        infrastructure.append(_nats(settings, secret))
    if settings.redis_url is None:
        infrastructure.append(_valkey(settings, secret))
    env = service_environment(settings, infrastructure, secret)

    def service_component(name: str) -> Component:
        url = settings.service_url(name)
        return Component(name, "service", [sys.executable, "-m", "kansoku", "serve", name],
                         url, http_probe(f"{url}/health/ready"), settings.log_dir / f"{name}.log",
                         env=env, forked_service=name)

    explorer = [service_component("explorer")]
    services = [service_component(s.name) for s in topology.SERVICES
                if s.name != "explorer" and s.name not in topology.MONITORS]
    # The monitors walk through the gateway: started with it, their first round would
    # report the shop's own start-up as an outage.
    monitors = [service_component(s.name) for s in topology.SERVICES
                if s.name in topology.MONITORS]
    return [group for group in (infrastructure, explorer, services, monitors) if group]


def migrate_command() -> list[str]:
    return [sys.executable, "-m", "kansoku", "migrate"]
