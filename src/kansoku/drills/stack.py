"""What a drill does to the running stack, with the same means the rest of kansoku uses:

- its fault is switched on and off as `kansoku flags set` (the flags file) and the chaos
  action `stop` / `start` (the supervisor) do it (`kansoku.chaos.actions`);
- its load is `kansoku load`, run in the background in a session of its own, so it
  outlives the `kansoku drill start` that began it (`start_load`, `stop_load`);
- a fix is checked with the chaos probes (`kansoku.chaos.probes`): the service at fault
  is ready, a customer can buy, and its error rate and latency are back within bounds.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil

from kansoku.chaos import experiment as chaos
from kansoku.chaos.actions import ActionFailed, Actions, Stack, StackError
from kansoku.chaos.probes import Prober, ProbeResult
from kansoku.drills.model import Fault, FlagFault, Load, StopFault, Truth
from kansoku.faults import catalogue, flagfile
from kansoku.faults.catalogue import FaultCategory
from kansoku.kit.flagkinds import OFF
from kansoku.kit.i18n import N_, Phrase, Words, _
from kansoku.stack import infra
from kansoku.stack.settings import StackSettings

#: Bounds a fix must bring the service at fault back within, over `RECOVERY_WINDOW`.
MAX_ERROR_PERCENT = 5.0
MAX_P95_SECONDS = 1.0
RECOVERY_WINDOW = 30.0
#: What a `fix` says while the fault itself is still switched on. It does not name the
#: fault: that would answer the drill.
STILL_BROKEN = Phrase(N_("the fault is still there: the shop cannot recover until it is "
                         "undone"))


class DrillStackError(Exception):
    """The stack cannot do what the drill needs; the message says what to do."""


async def switch_on(stack: Stack, fault: Fault) -> Words:
    """Switch the fault on; a few words on what was done (said in the reader's
    language)."""
    with _as_drill_errors(stack):
        match fault:
            case FlagFault():
                flagfile.set_variant(stack.flags_file, fault.flag, fault.variant)
                return Phrase(N_("{flag} set to {variant}"), flag=fault.flag,
                              variant=fault.variant)
            case StopFault():
                stack.state()  # a stack must run for anything to be stopped
                return await Actions(stack).stop(fault.stop)


async def switch_off(stack: Stack, fault: Fault) -> Words:
    """Switch the fault off (whatever the learner did meanwhile); a few words on it."""
    with _as_drill_errors(stack):
        match fault:
            case FlagFault():
                flagfile.set_variant(stack.flags_file, fault.flag, OFF)
                return Phrase(N_("{flag} set to {variant}"), flag=fault.flag, variant=OFF)
            case StopFault():
                return await Actions(stack).start(fault.stop)


@contextlib.contextmanager
def _as_drill_errors(stack: Stack) -> Iterator[None]:
    """Whatever switching a fault raises, as one `DrillStackError` saying what to do."""
    try:
        yield
    except (ActionFailed, StackError, catalogue.FlagError, flagfile.FlagFileError) as exc:
        raise DrillStackError(str(exc)) from exc
    except OSError as exc:
        raise DrillStackError(_("cannot write {path}: {error} — check the data "
                                "directory").format(path=stack.flags_file,
                                                    error=exc.strerror)) from exc


def still_on(stack: Stack, fault: Fault) -> bool:
    """Whether the fault is still switched on in the stack."""
    match fault:
        case FlagFault():
            try:
                return flagfile.read_variants(stack.flags_file).get(fault.flag, OFF) != OFF
            except (OSError, flagfile.FlagFileError):
                return True  # cannot tell: not recovered
        case StopFault():
            try:
                return stack.component(fault.stop).stopped_by_user
            except StackError:
                return True


def recovery_probes(truth: Truth) -> list[chaos.Probe]:
    """What must hold for the shop to count as recovered from a fault of `truth`: the
    service at fault ready, a checkout paid, its error rate (and, for slowness, its
    p95) within bounds over the last `RECOVERY_WINDOW`."""
    assert truth.service is not None
    probes: list[chaos.Probe] = [
        chaos.ReadyProbe(type="ready", component=truth.service),
        chaos.CheckoutProbe(type="checkout"),
        chaos.ErrorRateProbe(type="error-rate", service=truth.service,
                             max_percent=MAX_ERROR_PERCENT, window=RECOVERY_WINDOW),
    ]
    if truth.category in (FaultCategory.LATENCY, FaultCategory.RESOURCES):
        probes.append(chaos.LatencyProbe(type="latency", service=truth.service,
                                         max_p95=MAX_P95_SECONDS, window=RECOVERY_WINDOW))
    return probes


async def check_fix(stack: Stack, fault: Fault) -> tuple[bool, Phrase]:
    """Whether the learner's fix holds: the fault undone and every recovery probe
    holding; with what was seen, in words (said in the reader's language)."""
    if still_on(stack, fault):
        return False, STILL_BROKEN
    prober = Prober(stack)
    try:
        results = await prober.round(recovery_probes(fault.truth))
    finally:
        await prober.close()
    failed = [result for result in results if not result.held]
    if failed:
        return False, Phrase(N_("not recovered yet — {failed}"), failed=_seen(failed))
    return True, Phrase(N_("recovered — {probes}"), probes=_seen(results))


def _seen(results: list[ProbeResult]) -> Phrase:
    """What the probes saw, one after another: "probe: detail; probe: detail". The
    template is made here, of placeholders only: nothing in it to translate."""
    template = "; ".join(f"{{probe{n}}}: {{detail{n}}}" for n in range(len(results)))
    values: dict[str, Words] = {}
    for n, result in enumerate(results):
        values[f"probe{n}"], values[f"detail{n}"] = result.probe, result.detail
    return Phrase(template, **values)


# --- the load ---------------------------------------------------------------------------

def start_load(settings: StackSettings, load: Load) -> tuple[int, float]:
    """Run `kansoku load` for the drill in the background, its output in the log
    directory; returns its pid and start time (to stop that process, not a successor
    with its pid)."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log = settings.log_dir / "drill-load.log"
    command = [sys.executable, "-m", "kansoku", "load", "--users", str(load.users),
               "--duration", f"{load.duration:.0f}s", "--json",
               "--data-dir", str(settings.data_dir)]
    with log.open("ab") as output:
        # A session of its own: the load outlives this command and no terminal's Ctrl-C
        # reaches it. `kansoku load` stays its parent, which the load generator needs.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=output, start_new_session=True)
    try:
        started = psutil.Process(process.pid).create_time()
    except psutil.Error:
        started = 0.0
    return process.pid, started


def stop_load(pid: int, started: float) -> bool:
    """Stop the drill's load (as Ctrl-C stops `kansoku load`); False if it had ended."""
    try:
        process = psutil.Process(pid)
        if started and abs(process.create_time() - started) >= 1:
            return False  # the pid is another process's now
        process.send_signal(signal.SIGINT)
    except psutil.Error:
        return False
    with contextlib.suppress(psutil.Error):
        process.wait(timeout=15)
    return True


# --- where things are ---------------------------------------------------------------------

def database_url(settings: StackSettings, stack: Stack) -> str:
    """The PostgreSQL the history lives in: `KANSOKU_DATABASE_URL` (the stack's
    `database_url`) when set, else the running stack's embedded one."""
    if settings.database_url:
        return settings.database_url
    try:
        postgres = stack.component("postgresql")
    except StackError as exc:
        raise DrillStackError(str(exc)) from exc
    parts = urlsplit(postgres.url)
    try:
        password = settings.secret_file.read_text().strip()
    except OSError as exc:
        raise DrillStackError(_("cannot read the stack's secret {path}: {error} — run "
                                "kansoku as the user who started the stack").format(
                                    path=settings.secret_file, error=exc.strerror)) from exc
    assert parts.hostname is not None and parts.port is not None
    return infra.postgres_url(parts.hostname, parts.port, password,
                              database=parts.path.lstrip("/"))

