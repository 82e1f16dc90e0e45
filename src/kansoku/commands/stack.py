"""The stack's commands: start, stop and inspect the platform running from a data
directory.

    kansoku up [--detach]     start everything (embedded PostgreSQL, NATS, Valkey, services)
    kansoku down              stop a detached stack
    kansoku status [--json]   every component: name, pid, url, state, health
    kansoku stop NAME         stop one component and keep it stopped
    kansoku start NAME        start a component stopped that way, wait until it is ready
    kansoku supervise         (hidden) the supervisor, which `up` starts in the background

They learn about the stack from its state file (`stack/state.py`); `up` starts the
supervisor (`stack/supervisor.py`) and `stop`/`start` leave it requests
(`stack/control.py`). Modules only some commands need (the supervisor, the preflight
checks, psutil, rich's live display) are imported inside them: every `kansoku` command
imports this module, and would otherwise pay for them at start-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.cells import cell_len
from rich.table import Table

from kansoku.commands import health as health_check
from kansoku.commands.common import DataDir, console, fail, load_settings, print_table
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.kit import i18n
from kansoku.kit.i18n import N_, _, gettext
from kansoku.loadgen.browser_setup import BrowserSynthetic, browser_synthetic
from kansoku.stack.control import ControlError, Request, ask_supervisor
from kansoku.stack.paths import StackPaths
from kansoku.stack.state import (
    ComponentState,
    StackNotRunning,
    StackState,
    process_alive,
    read_stack_state,
    running_stack,
)

if TYPE_CHECKING:
    from kansoku.stack.settings import StackSettings

app = TranslatedTyper()


def _read_state(settings: StackSettings | StackPaths) -> StackState | None:
    """The state file, whatever the stack is doing; exits when it cannot be read."""
    try:
        return read_stack_state(settings)
    except StackNotRunning as exc:
        fail(str(exc))


# --- up / down / status ---------------------------------------------------------------

#: A component's states and health, as the table shows them (the JSON keeps the codes),
#: with their colours.
STATE_WORDS: dict[str, str] = {
    "running": N_("running"), "healthy": N_("healthy"), "failed": N_("failed"),
    "unhealthy": N_("unhealthy"), "down": N_("down"), "restarting": N_("restarting"),
    "starting": N_("starting"), "preparing": N_("preparing"), "stopping": N_("stopping"),
    "stopped": N_("stopped"), "pending": N_("pending"), "unknown": N_("unknown")}
STATE_COLOURS: dict[str, str] = {
    "running": "green", "healthy": "green", "failed": "red", "unhealthy": "red",
    "down": "red", "restarting": "yellow", "starting": "yellow", "preparing": "yellow",
    "stopping": "yellow"}


def _state_words(code: str) -> str:
    return gettext(STATE_WORDS[code]) if code in STATE_WORDS else code


def _state(code: str) -> str:
    """A state or health in words and colour (console markup)."""
    words = _state_words(code)
    return f"[{STATE_COLOURS[code]}]{words}[/]" if code in STATE_COLOURS else words


def _state_table(components: list[ComponentState], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for column in (_("component"), _("state"), _("health"), _("pid"), _("restarts")):
        table.add_column(column)
    # A URL is there to be copied: in a narrow terminal it folds onto a second line
    # rather than end in "…".
    table.add_column(_("url"), overflow="fold")
    for component in components:
        table.add_row(component.name, _state(component.state), _state(component.health),
                      str(component.pid or "-"), str(component.restarts), component.url)
    return table


def _demo_login(email_variable: str, password_variable: str, email: str, password: str
                ) -> str:
    """A demo account's login, for the start-up message. A password the user chose is
    theirs: it is named, never printed."""
    email = os.environ.get(email_variable, email)
    if password_variable in os.environ:
        password = _("(the password in {variable})").format(variable=password_variable)
    return f"{email} / {password}"


def _urls(settings: StackSettings) -> str:
    customer = _demo_login("KANSOKU_DEMO_CUSTOMER_EMAIL", "KANSOKU_DEMO_CUSTOMER_PASSWORD",
                           "alice@example.com", "alice-pass-1234")
    admin = _demo_login("KANSOKU_DEMO_ADMIN_EMAIL", "KANSOKU_DEMO_ADMIN_PASSWORD",
                        "admin@example.com", "admin-pass-1234")
    gateway = settings.service_url("gateway")
    rows = [(_("storefront"), gateway), (_("public API"), f"{gateway}/api/docs"),
            (_("explorer"), settings.service_url("explorer")),
            ("OTLP/HTTP", _("{endpoint}  (send telemetry here)").format(
                endpoint=settings.otlp_endpoint)),
            (_("logs"), f"{settings.log_dir}/"),
            (_("demo logins"), _("customer {login}").format(login=customer)),
            ("", _("admin    {login}").format(login=admin))]
    # Japanese labels are twice as wide per character: pad by the width shown.
    width = max(cell_len(label) for label, _value in rows) + 2
    return "\n".join(f"  {label}{' ' * (width - cell_len(label))}{value}"
                     for label, value in rows)


def _spawn_supervisor(settings: StackSettings) -> subprocess.Popen[bytes]:
    from kansoku.stack.infra import keep_data_private

    keep_data_private(settings.data_dir)  # files 0600, folders 0700 (docs/security.md)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    with (settings.log_dir / "supervisor.log").open("ab") as log:
        # In this command's language: what it tells `up` (its steps, a failure) is shown.
        return subprocess.Popen(
            [sys.executable, "-m", "kansoku", "--lang", str(i18n.current_language()),
             "supervise", "--data-dir", str(settings.data_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_start(settings: StackSettings, supervisor: subprocess.Popen[bytes]) -> None:
    """Show progress until every component is ready; exit with the error if start fails."""
    from rich.live import Live

    started = time.monotonic()
    with Live(console=console, refresh_per_second=8, transient=True) as live:
        while True:
            state = _read_state(settings)
            mine = state if state and state.supervisor.pid == supervisor.pid else None
            phase = mine.supervisor.state if mine else "starting"
            step = mine.supervisor.step if mine else _("starting the supervisor")
            elapsed = time.monotonic() - started
            live.update(_state_table(mine.components if mine else [], _(
                "Starting kansoku … {seconds}s  {step}").format(
                    seconds=f"{elapsed:4.1f}", step=step)))
            if phase == "running":
                break
            if phase == "failed" or supervisor.poll() is not None:
                error = mine.supervisor.error if mine else None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    supervisor.wait(60)
                fail(error or _supervisor_exit_reason(settings))
            time.sleep(0.15)
    console.print(_("[bold green]kansoku is ready[/] in {seconds}s").format(
        seconds=f"{time.monotonic() - started:.1f}") + f"\n{_urls(settings)}",
        highlight=False)
    _say_if_the_browser_synthetic_is_off()


def _say_if_the_browser_synthetic_is_off(known: BrowserSynthetic | None = None) -> None:
    """One line when the synthetics cannot run their browser journey, with the command
    that turns it on (nothing when they can): as `known` says (the state file's), else
    as this environment's settings say."""
    notice = (known or browser_synthetic()).notice()
    if notice:
        console.print(f"[yellow]{notice}[/]", highlight=False)


def _supervisor_exit_reason(settings: StackSettings) -> str:
    """The supervisor's last words, for when it exits without recording an error."""
    log = settings.log_dir / "supervisor.log"
    try:
        last = log.read_text(errors="replace").strip().splitlines()[-1]
        last = json.loads(last).get("message", last) if last.startswith("{") else last
    except (OSError, IndexError, json.JSONDecodeError):
        last = _("no message")
    last = last.removeprefix("error: ")
    return _("the supervisor stopped: {last} — see {log}").format(last=last, log=log)


def _stop_supervisor(settings: StackSettings, pid: int, timeout: float = 60.0) -> None:
    # Stopping is under way: a second Ctrl-C must not cut it short with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with console.status(_("Stopping kansoku …")):
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.2)
    _kill_leftovers(settings)


def _kill_leftovers(settings: StackSettings) -> None:
    """Last resort: any process the state file lists that still runs is killed. Each is
    matched by pid and start time, so an unrelated process that reused a pid is spared."""
    state = _read_state(settings)
    if state is None:
        return
    processes = [(c.pid, c.process_started) for c in state.components]
    processes.append((state.supervisor.pid, state.supervisor.process_started))
    processes.append((state.supervisor.template_pid, state.supervisor.template_started))
    import psutil

    for pid, started in processes:
        if pid and started and process_alive(pid, started):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


@app.command(help=_("Start the whole platform and wait until every component is ready."))
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d",
                                         help=_("Return once everything is ready."))] = False,
    data_dir: DataDir = None,
) -> None:
    from kansoku.kit.settings import ConfigurationError
    from kansoku.stack.preflight import PreflightFailed, run_preflight

    settings = load_settings(data_dir)
    try:
        run_preflight(settings)
    except (PreflightFailed, ConfigurationError) as exc:
        fail(str(exc))
    supervisor = _spawn_supervisor(settings)

    def stop_on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, a closed terminal (SIGHUP) or SIGTERM stops the stack — also while a
    # --detach start is still waiting: an abandoned start leaves nothing running.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    try:
        _wait_for_start(settings, supervisor)
        if detach:
            console.print(_("Running in the background: 'kansoku status' shows it, "
                            "'kansoku down' stops it."))
            return
        console.print(_("Press Ctrl-C to stop everything."))
        from rich.live import Live

        with Live(console=console, refresh_per_second=1) as live:
            while supervisor.poll() is None:
                state = _read_state(settings)
                live.update(_state_table(state.components if state else [], "kansoku"))
                time.sleep(1)
        fail(_supervisor_exit_reason(settings))
    except KeyboardInterrupt:
        _stop_supervisor(settings, supervisor.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            supervisor.wait(5)
        console.print(_("kansoku stopped."))


@app.command(help=_("Stop a running stack (started with --detach) and leave no process "
                    "behind."))
def down(data_dir: DataDir = None) -> None:
    settings = load_settings(data_dir)
    state = _read_state(settings)
    if state is None or not state.supervisor_alive():
        _kill_leftovers(settings)
        console.print(_not_running(settings))
        return
    _stop_supervisor(settings, state.supervisor.pid)
    console.print(_("kansoku stopped."))


def _not_running(settings: StackSettings | StackPaths) -> str:
    return _("kansoku is not running (data directory {path}).").format(
        path=settings.data_dir)


#: How long `status` waits for one component's answer.
PROBE_TIMEOUT_SECONDS = 2.0


def _probe(url: str) -> str:
    """Health as seen right now: /health/ready for services, a TCP connect otherwise.

    The standard library's client, as the container healthcheck's: `status` should answer
    at once, and importing httpx would cost it more than all the probes together."""
    parts = urlsplit(url)
    if parts.scheme == "http":
        answer = health_check.answer_status(f"{url}/health/ready", PROBE_TIMEOUT_SECONDS)
        return "down" if answer is None else "healthy" if answer == 200 else "unhealthy"
    try:
        socket.create_connection((parts.hostname, parts.port), PROBE_TIMEOUT_SECONDS).close()
    except (OSError, ValueError):
        return "down"
    return "healthy"


def _probe_all(urls: list[str]) -> list[str]:
    """Every component probed at once, each in a thread of its own. (Threads, not a
    thread pool: `concurrent.futures` would cost `status` more than the probes.)"""
    healths = ["down"] * len(urls)

    def probe(index: int) -> None:
        healths[index] = _probe(urls[index])

    threads = [threading.Thread(target=probe, args=(index,), daemon=True)
               for index in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return healths


@app.command(help=_("List every component: name, pid, url, state and health (probed now)."))
def status(
    as_json: Annotated[bool, typer.Option("--json",
                                          help=_("Machine-readable output."))] = False,
    data_dir: DataDir = None,
) -> None:
    # The data directory alone, not the settings: they would cost more than the rest of
    # `status` (stack/paths.py).
    settings = StackPaths.chosen(data_dir)
    state = _read_state(settings)
    running = state is not None and state.supervisor_alive()
    components = state.components if state else []
    if running:
        healths = _probe_all([component.url for component in components])
        components = [replace(component, health=health)
                      for component, health in zip(components, healths, strict=True)]
    else:
        # A stop the user asked for ended with the stack: nothing is held any more.
        components = [replace(component, state="stopped", health="down", pid=None,
                              held=False) for component in components]
    phase = state.supervisor.state if running and state else "stopped"
    # A running stack's: what its supervisor found for its synthetics (read from the
    # state file, without their settings); else what this environment would give them.
    recorded = state.browser_synthetic if running and state else None
    if as_json:
        typer.echo(json.dumps({"state": phase, "data_dir": str(settings.data_dir),
                               "components": [asdict(c) for c in components],
                               "browser_synthetic": (recorded or browser_synthetic()).as_json()},
                              indent=2))
        return
    if not components:
        console.print(_not_running(settings))
        return
    print_table(_state_table(components, f"kansoku: {_state_words(phase)}"))
    if running:
        _say_if_the_browser_synthetic_is_off(recorded)


# --- stop / start one component ------------------------------------------------------

ComponentName = Annotated[
    str | None,
    typer.Argument(help=_("A component, as 'kansoku status' lists it (e.g. payments, "
                          "nats)."), show_default=False),
]

#: How long `stop` and `start` wait beyond the supervisor's own bounds (the stop's
#: SIGKILL deadline, the ready timeout) before saying they gave up.
CONTROL_MARGIN_SECONDS = 15.0


def _running_stack(settings: StackSettings) -> StackState:
    """The state of the stack running from this data directory; if there is none, exit
    with one line saying how to start it."""
    try:
        return running_stack(settings)
    except StackNotRunning as exc:
        fail(str(exc))


def _find_component(state: StackState, name: str | None, action: str) -> ComponentState:
    """The state file's entry for `name`; exit with the valid names if there is none."""
    names = ", ".join(state.component_names())
    if name is None:
        if action == "stop":
            fail(_("name the component to stop — one of: {names} ('kansoku down' stops "
                   "everything)").format(names=names), code=2)
        fail(_("name the component to start — one of: {names}").format(names=names),
             code=2)
    component = state.component(name)
    if component is None:
        fail(_("there is no component '{name}' — choose one of: {names}").format(
            name=name, names=names), code=2)
    return component


def _ask_supervisor(settings: StackSettings, state: StackState, request: Request) -> None:
    try:
        ask_supervisor(settings.run_dir, settings.log_dir, state.supervisor, request)
    except ControlError as exc:
        fail(str(exc))


def _wait_for(settings: StackSettings, name: str, timeout: float,
              outcome: Callable[[ComponentState], str | None]) -> str:
    """Poll the state file until `outcome(component)` names an outcome, and return it;
    "timeout" after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _read_state(settings)
        component = state.component(name) if state and state.supervisor_alive() else None
        if component is None:
            fail(_("the supervisor stopped while handling {name} — see {log}").format(
                name=name, log=settings.log_dir / "supervisor.log"))
        result = outcome(component)
        if result is not None:
            return result
        time.sleep(0.1)
    return "timeout"


@app.command(help=_("Stop one component of the running stack (SIGTERM, then SIGKILL) and "
                    "keep it stopped: it is not restarted until 'kansoku start NAME'. "
                    "'kansoku down' stops everything."))
def stop(name: ComponentName = None, data_dir: DataDir = None) -> None:
    from kansoku.stack.supervisor import STOP_TIMEOUT_SECONDS

    settings = load_settings(data_dir)
    state = _running_stack(settings)
    component = _find_component(state, name, "stop")
    name = component.name
    if component.stopped_by_user:
        console.print(_("{name} is already stopped.").format(name=name), highlight=False)
        return
    _ask_supervisor(settings, state, Request("stop", name))
    timeout = STOP_TIMEOUT_SECONDS + CONTROL_MARGIN_SECONDS
    with console.status(_("Stopping {name} …").format(name=name)):
        result = _wait_for(settings, name, timeout, lambda c: (
            "stopped" if c.stopped_by_user else None))
    if result == "timeout":
        fail(_("{name} did not stop within {seconds}s — the supervisor may still be "
               "stopping it; see {log}").format(name=name, seconds=f"{timeout:g}",
                                                log=settings.log_dir / "supervisor.log"))
    console.print(_("{name} stopped; it stays stopped until 'kansoku start {name}'.").format(
        name=name), highlight=False)


@app.command(help=_("Start a component stopped with 'kansoku stop NAME' and wait until it "
                    "is ready."))
def start(name: ComponentName = None, data_dir: DataDir = None) -> None:
    settings = load_settings(data_dir)
    state = _running_stack(settings)
    component = _find_component(state, name, "start")
    name = component.name
    if not component.held:
        if component.state == "running":
            console.print(_("{name} is already running.").format(name=name),
                          highlight=False)
        else:
            console.print(_("{name} is {state}, not stopped — the supervisor is already "
                            "starting it again; 'kansoku status' shows when it is "
                            "ready.").format(name=name, state=component.state),
                          highlight=False)
        return
    _ask_supervisor(settings, state, Request("start", name))
    timeout = settings.ready_timeout + CONTROL_MARGIN_SECONDS
    began = time.monotonic()

    def outcome(component: ComponentState) -> str | None:
        if component.held:
            return None  # not taken yet, or a stop made before this start still runs
        if component.state == "running":
            return "running"
        return "failed" if component.state in ("failed", "restarting") else None

    with console.status(_("Starting {name} …").format(name=name)):
        result = _wait_for(settings, name, timeout, outcome)
    logs = _("see {log} and {supervisor_log}").format(
        log=component.log, supervisor_log=settings.log_dir / "supervisor.log")
    if result == "failed":
        fail(_("{name} did not start; the supervisor keeps retrying it as after a crash "
               "— {logs}").format(name=name, logs=logs))
    if result == "timeout":
        fail(_("{name} did not become ready within {seconds}s — {logs}").format(
            name=name, seconds=f"{timeout:g}", logs=logs))
    console.print(_("{name} is running and ready ({seconds}s).").format(
        name=name, seconds=f"{time.monotonic() - began:.1f}"), highlight=False)


# --- the supervisor itself ---------------------------------------------------------------

@app.command(hidden=True)
def supervise(data_dir: DataDir = None) -> None:
    """Run the supervisor in this process (what `up` starts in the background)."""
    import asyncio

    from kansoku.kit.logging import setup_logging
    from kansoku.stack.infra import keep_data_private
    from kansoku.stack.supervisor import Supervisor, build_components, migrate_command

    settings = load_settings(data_dir)
    keep_data_private(settings.data_dir)  # files 0600, folders 0700 (docs/security.md)
    setup_logging("supervisor", os.environ.get("KANSOKU_LOG_LEVEL", "INFO"))
    # One supervisor per data directory: the lock is held until this process exits.
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    lock = (settings.run_dir / "supervisor.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fail(_("kansoku is already running from {path} — stop it with 'kansoku down' or "
               "use another --data-dir").format(path=settings.data_dir))
    groups = build_components(settings)
    supervisor = Supervisor(settings, groups, migrate_command(), prefork=settings.prefork)
    code = asyncio.run(supervisor.run())
    raise typer.Exit(code)
