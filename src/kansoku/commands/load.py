"""`kansoku load`, `kansoku synth` and `kansoku install-browser`: generated traffic (see
docs/load.md).

`load` drives the shop with Locust in a child process (`kansoku.loadgen.runner`: Locust
patches the standard library with gevent, which this process must not have), shows its
progress and ends with a summary per journey step. `synth` runs the synthetic monitors'
journeys once and prints each outcome with its trace id. `install-browser` installs what
the browser journey needs (`loadgen/browser_setup.py`).

The HTTP client, the progress display and the state file's reader are imported inside
the commands: every `kansoku` command imports this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kansoku.commands.common import (
    DataDir,
    console,
    fail,
    invalid_setting,
    load_settings,
    print_table,
)
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.kit.durations import DurationError, parse_duration
from kansoku.kit.i18n import _
from kansoku.loadgen.outcomes import FAILURE, JOURNEY_NAMES
from kansoku.loadgen.steps import STEP_NAMES, WEIGHTS, split_step

if TYPE_CHECKING:
    from kansoku.stack.settings import StackSettings

app = TranslatedTyper()

#: How long a stopped run may take to finish its requests and report.
STOP_GRACE_SECONDS = 30.0

def stack_url(settings: StackSettings, component: str) -> str:
    """Where `component` of the stack running from this data directory listens; exits
    with one line when no stack runs there."""
    from kansoku.stack.state import StackNotRunning, running_stack

    try:
        state = running_stack(settings)
    except StackNotRunning as exc:
        if exc.reason == "not-running":
            fail(_("{error}, or name a gateway with --target").format(error=exc))
        fail(str(exc))
    entry = state.component(component)
    if entry is None:
        fail(_("the running stack has no {component} — see 'kansoku status'").format(
            component=component))
    return entry.url


def check_gateway(target: str) -> None:
    """Exit with one line if the gateway at `target` cannot be reached or is not ready."""
    import httpx

    try:
        answer = httpx.get(f"{target}/health/ready", timeout=5)
    except httpx.HTTPError as exc:
        fail(_("cannot reach the gateway at {url} ({error}) — check the URL, or start the "
               "stack with 'kansoku up --detach'").format(url=target,
                                                          error=exc or type(exc).__name__))
    if answer.status_code != 200:
        fail(_("the gateway at {url} is not ready (HTTP {status}) — 'kansoku status' shows "
               "which part is down").format(url=target, status=answer.status_code))


def _target(settings: StackSettings, target: str | None) -> str:
    if target is None:
        return stack_url(settings, "gateway")
    target = target.rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", target):
        fail(_("--target {target} is not an http(s) URL — use e.g. "
               "http://127.0.0.1:8000").format(target=repr(target)), code=2)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def summary_table(summary: dict[str, Any]) -> Table:
    """Per journey step: requests, failures and response-time percentiles (ms)."""
    table = Table(title=_("kansoku load: summary (response times in ms)"),
                  title_justify="left")
    for column, justify in ((_("journey"), "left"), (_("step"), "left"),
                            (_("requests"), "right"), (_("failures"), "right"),
                            ("p50", "right"), ("p95", "right"), ("p99", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    steps = {step["name"]: step for step in summary["steps"]}
    names = [*STEP_NAMES, *(name for name in steps if name not in STEP_NAMES)]
    for name in names:
        step = steps.get(name, {"requests": 0, "failures": 0, "p50": None, "p95": None,
                                "p99": None})
        journey, part = split_step(name)
        failures = str(step["failures"])
        table.add_row(journey, part, f"{step['requests']:,}",
                      f"[red]{failures}[/]" if step["failures"] else failures,
                      _ms(step["p50"]), _ms(step["p95"]), _ms(step["p99"]))
    total = summary["total"]
    table.add_section()
    table.add_row(_("all"), "", f"{total['requests']:,}", str(total["failures"]),
                  _ms(total["p50"]), _ms(total["p95"]), _ms(total["p99"]), style="bold")
    return table


def summary_document(summary: dict[str, Any], target: str) -> dict[str, Any]:
    """The summary for `--json`: one entry per journey step, in the table's order."""
    steps = {step["name"]: step for step in summary["steps"]}
    rows = []
    for name in [*STEP_NAMES, *(name for name in steps if name not in STEP_NAMES)]:
        step = steps.get(name, {"requests": 0, "failures": 0, "p50": None, "p95": None,
                                "p99": None})
        journey, part = split_step(name)
        rows.append({"journey": journey, "step": part, "requests": step["requests"],
                     "failures": step["failures"], "p50_ms": step["p50"],
                     "p95_ms": step["p95"], "p99_ms": step["p99"]})
    total = summary["total"]
    return {"target": target, "elapsed_seconds": summary.get("elapsed"), "steps": rows,
            "total": {"requests": total["requests"], "failures": total["failures"],
                      "p50_ms": total["p50"], "p95_ms": total["p95"],
                      "p99_ms": total["p99"], "rps": total["rps"]},
            "errors": summary["errors"]}


class LoadRun:
    """The child process running Locust, and what it reported."""

    def __init__(self, command: list[str], log: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            # Its own session: a terminal's Ctrl-C reaches only this process, which
            # stops the run and still collects the summary.
            start_new_session=True, text=True, bufsize=1)
        self.summary: dict[str, Any] | None = None
        self.error: str | None = None
        self.progress: dict[str, Any] = {}
        self.web_url: str | None = None

    def read(self) -> bool:
        """Take the next message; False once the child has closed its output."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            return False
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return True  # not ours (a library printing): ignore it
        event = message.pop("event", None)
        if event == "progress":
            self.progress = message
        elif event == "summary":
            self.summary = message
        elif event == "error":
            self.error = message["message"]
        elif event == "web":
            self.web_url = message["url"]
        return True

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)

    def finish(self) -> None:
        """Read what is left (the summary) within the grace, then make sure it ended."""
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        with contextlib.suppress(KeyboardInterrupt):
            while time.monotonic() < deadline and self.read():
                pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(max(0.1, deadline - time.monotonic()))
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@app.command("load", help=_(
    "Drive the shop with simulated shoppers (Locust) and summarise each journey step.\n\n"
    "Journeys, by weight: browse, search, view product, add to cart, checkout (order and "
    "pay with a test card), login and admin restock; each shopper registers an account "
    "first. Requests carry the baggage kansoku.synthetic=load, so the explorer can tell "
    "them from real customers. While the loadFlood fault flag is on, the run drives ten "
    "times its users.\n\n"
    "Exit code: 0 when every request succeeded, 1 when any failed (or the run could not "
    "start), 2 for bad options. Ctrl-C stops early and still prints the summary."))
def load(
    users: Annotated[int, typer.Option("--users", "-u", min=1, max=10_000,
                                       help=_("Simulated shoppers at once."))] = 10,
    spawn_rate: Annotated[float, typer.Option(
        "--spawn-rate", "-r", min=0.1,
        help=_("Shoppers started per second until all run."))] = 2.0,
    duration: Annotated[str, typer.Option(
        "--duration", "-t", help=_("How long to run: 90s, 5m, 1h30m."))] = "5m",
    headless: Annotated[bool, typer.Option(
        "--headless/--web", help=_("--web also serves Locust's web UI (charts, and a way "
                                   "to change the users) on loopback and prints its "
                                   "address."))] = True,
    target: Annotated[str | None, typer.Option(
        "--target", help=_("The gateway to drive (default: the running stack's)."),
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help=_("Print the summary as JSON instead of a table."))] = False,
    data_dir: DataDir = None,
) -> None:
    try:
        seconds = parse_duration(duration, positive=True)
    except DurationError:
        fail(_("--duration {duration} is not a duration — use e.g. 90s, 5m or "
               "1h30m").format(duration=repr(duration)), code=2)
    settings = load_settings(data_dir)
    gateway = _target(settings, target)
    check_gateway(gateway)

    command = [sys.executable, "-m", "kansoku.loadgen.runner", "--host", gateway,
               "--users", str(users), "--spawn-rate", str(spawn_rate),
               "--duration", str(seconds),
               "--flags-file", str(settings.data_dir / "flags.json")]
    if not headless:
        command += ["--web-port", str(_free_port())]
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "load.log"
    if not as_json:
        console.print(_("Driving {url} with {users} shoppers for {duration} (journeys: "
                        "{journeys}) — Ctrl-C stops early.").format(
                            url=gateway, users=users, duration=duration,
                            journeys=", ".join(WEIGHTS)), highlight=False)
    with log_path.open("ab") as log:
        run = LoadRun(command, log)
        stopped = False
        try:
            _follow(run, seconds, quiet=as_json)
        except KeyboardInterrupt:
            stopped = True
            if not as_json:
                console.print(_("Stopping … (the summary follows)"))
            run.stop()
        run.finish()
    if run.error:
        fail(run.error)
    if run.summary is None:
        fail(_("the load run stopped without a summary (exit {code}) — see {log}").format(
            code=run.process.returncode, log=log_path))
    summary = run.summary
    if as_json:
        typer.echo(json.dumps(summary_document(summary, gateway), indent=2))
    else:
        print_table(summary_table(summary))
        for error in summary["errors"][:5]:
            console.print(f"  [red]{error['occurrences']} x[/] {error['step']}: "
                          f"{error['error'][:200]}", highlight=False)
        if stopped:
            console.print(_("Stopped early, after {seconds}s.").format(
                seconds=f"{summary.get('elapsed', 0):.0f}"))
    failures, requests = summary["total"]["failures"], summary["total"]["requests"]
    if failures:
        if not as_json:
            console.print(_("[red]{failures} of {requests} requests failed[/] — the "
                            "explorer ({explorer}) shows their traces; Locust's log is "
                            "{log}.").format(failures=failures, requests=requests,
                                             explorer=_explorer_hint(settings),
                                             log=log_path), highlight=False)
        raise typer.Exit(1)
    if not as_json:
        console.print(_("[green]{requests} requests, none failed.[/]").format(
            requests=requests), highlight=False)


def _explorer_hint(settings: StackSettings) -> str:
    from kansoku.stack.state import StackNotRunning, read_stack_state

    with contextlib.suppress(StackNotRunning):
        state = read_stack_state(settings)
        explorer = state.component("explorer") if state else None
        if explorer is not None:
            return explorer.url
    return _("kansoku status lists it")


def _follow(run: LoadRun, seconds: float, *, quiet: bool) -> None:
    """Show the run's progress until the child ends its output."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]load[/]"), BarColumn(), TimeElapsedColumn(),
        # Rich fills in the {task.fields[…]}: the catalog keeps them as they are.
        TextColumn(_("{task.fields[remaining]} left · {task.fields[users]} users · "
                     "{task.fields[rps]} req/s · {task.fields[requests]} requests · "
                     "{task.fields[failures]} failed{task.fields[flood]}")),
        console=console, transient=True, disable=quiet)
    with progress:
        task = progress.add_task("load", total=seconds, remaining="-", users=0, rps=0,
                                 requests=0, failures=0, flood="")
        shown_web = False
        while run.read():
            if run.web_url and not shown_web and not quiet:
                progress.console.print(_("Locust's web UI: {url}").format(url=run.web_url),
                                       highlight=False)
                shown_web = True
            state = run.progress
            if state:
                elapsed = float(state["elapsed"])
                left = max(0.0, seconds - elapsed)
                failures = state["failures"]
                progress.update(
                    task, completed=min(elapsed, seconds),
                    remaining=f"{int(left // 60)}:{int(left % 60):02d}",
                    users=state["users"], rps=state["rps"], requests=state["requests"],
                    failures=f"[red]{failures}[/]" if failures else failures,
                    flood=" · [yellow]loadFlood on[/]" if state.get("flood") else "")



# --- kansoku synth ----------------------------------------------------------------------

def _service_secret(settings: StackSettings) -> str | None:
    """The stack's service secret, as the supervisor gives it to the services: the
    monitor customer's password is derived from it."""
    # Imported here, like the monitors below: the embedded servers' module is start-up
    # time only `synth` needs.
    from kansoku.stack.infra import derived_secret

    if os.environ.get("KANSOKU_SERVICE_SECRET"):
        return os.environ["KANSOKU_SERVICE_SECRET"]
    try:
        stack_secret = settings.secret_file.read_text().strip()
    except OSError:
        return None
    return derived_secret(stack_secret, "service-tokens") if stack_secret else None


def results_table(results: list[Any]) -> Table:
    table = Table(title="kansoku synth", title_justify="left")
    for column, justify in ((_("journey"), "left"), (_("outcome"), "left"),
                            (_("duration"), "right"), (_("trace id"), "left"),
                            (_("detail"), "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    colours = {"success": "green", "failure": "red", "skipped": "yellow"}
    for result in results:
        detail = result.error or ""
        if result.step and result.outcome == "failure":
            detail = _("at {step}: {detail}").format(step=result.step, detail=detail)
        table.add_row(result.journey, f"[{colours[result.outcome]}]{result.outcome}[/]",
                      f"{result.duration_seconds:.2f}s", result.trace_id or "-", detail)
    return table


@app.command("synth", help=_(
    "Run the synthetic monitors' journeys once and print each outcome with its trace.\n\n"
    "Each run is a trace in the explorer (root span `synthetic <journey>`, its steps, and "
    "the services' spans under them), a kansoku.synthetics.runs / .duration measurement "
    "and a log record. Exit code 1 when a journey failed; a journey that cannot run here "
    "(no Chromium for 'storefront') is reported skipped and does not count as failed."))
def synth(
    journey: Annotated[list[str] | None, typer.Option(
        "--journey", "-j", help=_("Run only this journey (repeatable): browse, checkout or "
                                  "storefront (default: all)."), show_default=False)] = None,
    target: Annotated[str | None, typer.Option(
        "--target", help=_("The gateway to check (default: the running stack's)."),
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json",
                                          help=_("Print the results as JSON."))] = False,
    data_dir: DataDir = None,
) -> None:
    # Imported here: the monitors bring OpenTelemetry's SDK and httpx, a second of
    # start-up every other command would pay.
    import asyncio

    from kansoku.loadgen.synthetics import SERVICE, Monitor

    names = journey or list(JOURNEY_NAMES)
    unknown = [name for name in names if name not in JOURNEY_NAMES]
    if unknown:
        fail(_("there is no journey '{journey}' — choose from {choices}").format(
            journey=unknown[0], choices=", ".join(JOURNEY_NAMES)), code=2)
    settings = load_settings(data_dir)
    gateway = _target(settings, target)
    check_gateway(gateway)
    # The runs' telemetry goes where the stack's does: the explorer, unless the user
    # named another backend.
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", settings.otlp_endpoint)
    from kansoku.kit.telemetry import setup_telemetry  # start-up time, as above

    telemetry = setup_telemetry(SERVICE, prometheus=False)
    # Each run's log record goes over OTLP only: the table says the same here.
    run_log = logging.getLogger("kansoku.synthetics")
    run_log.handlers, run_log.propagate = list(telemetry.log_handlers), False
    run_log.setLevel(logging.INFO)
    try:
        monitor = Monitor(gateway, telemetry, service_secret=_service_secret(settings),
                          chromium_path=os.environ.get("KANSOKU_SYNTHETICS_CHROMIUM_PATH",
                                                       "/usr/bin/chromium"))
        with console.status(_("Running the synthetic journeys …")) if not as_json \
                else contextlib.nullcontext():
            results = asyncio.run(monitor.run_round(names))
    finally:
        telemetry.shutdown()  # the traces and metrics leave before the table shows
    if as_json:
        typer.echo(json.dumps({"data": [result.as_dict() for result in results]}, indent=2))
    else:
        print_table(results_table(results))
        explorer = _explorer_hint(settings)
        if explorer.startswith("http"):
            console.print(_("Traces: {url}/traces/<trace id>").format(url=explorer),
                          highlight=False)
    if any(result.outcome == FAILURE for result in results):
        raise typer.Exit(1)


@app.command("install-browser", help=_(
    "Turn on the browser synthetic journey (`storefront`): install Playwright into "
    "kansoku's own Python environment (pip; it never downloads a browser) and Debian's "
    "Chromium (apt-get, as root or through sudo), whichever is missing.\n\n"
    "A running stack's synthetics pick it up at their next round, within a minute. The "
    "browser journey is the only monitor that loads the shop's pages and their images in "
    "a browser: imageSlowLoad shows only there."))
def install_browser() -> None:
    # Imported here: other commands need none of it.
    from pydantic import ValidationError

    from kansoku.loadgen.browser_setup import (
        InstallFailed,
        browser_synthetic,
        install_chromium,
        install_playwright,
        missing_browser,
        playwright_installed,
    )
    from kansoku.loadgen.settings import Settings

    try:
        chromium = Settings().chromium_path
    except ValidationError as exc:
        invalid_setting(exc, "KANSOKU_SYNTHETICS_")
    try:
        if not playwright_installed():
            with console.status(_("Installing Playwright (pip) …")):
                install_playwright()
            console.print(_("Playwright installed."))
        if not os.access(chromium, os.X_OK):
            with console.status(_("Installing Chromium (apt-get) …")):
                install_chromium(chromium)
            console.print(_("Chromium installed at {path}.").format(path=chromium),
                          highlight=False)
    except InstallFailed as exc:
        fail(str(exc))
    still_missing = missing_browser(chromium)
    if still_missing:
        fail(_("{problem} even after installing it — check that '{path} --headless "
               "--version' runs").format(problem=still_missing, path=chromium))
    state = browser_synthetic()
    console.print(_("The browser synthetic can run: Chromium and Playwright are here. A "
                    "running stack's synthetics run it from their next round.")
                  if state.on else state.notice() or "", highlight=False)
