"""Checks `kansoku up` makes before starting anything, so that a problem is one clear
line naming the fix — and nothing is left half-started."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path
from urllib.parse import urlsplit

from kansoku import topology
from kansoku.kit.db import check_reachable, redact_url
from kansoku.kit.i18n import _
from kansoku.stack import infra
from kansoku.stack.settings import LOOPBACK, StackSettings
from kansoku.stack.state import StackNotRunning, read_stack_state


class PreflightFailed(Exception):
    """Start-up cannot go ahead; the message says what is wrong and how to fix it."""


def check_data_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise PreflightFailed(_(
            "the data directory {path} is not writable ({error}) — choose another with "
            "--data-dir or KANSOKU_DATA_DIR").format(path=data_dir,
                                                     error=exc.strerror or exc)) from exc


def check_not_running(settings: StackSettings) -> None:
    """No supervisor runs from this data directory, whatever it is doing (starting,
    stopping): a second stack would fight it for every port and file."""
    try:
        state = read_stack_state(settings)
    except StackNotRunning as exc:  # the state file cannot be read
        raise PreflightFailed(str(exc)) from exc
    if state is not None and state.supervisor_alive():
        raise PreflightFailed(_(
            "kansoku is already running from {path} (supervisor pid {pid}) — stop it with "
            "'kansoku down' or use another --data-dir").format(path=settings.data_dir,
                                                               pid=state.supervisor.pid))


def planned_ports(settings: StackSettings) -> list[tuple[str, int, str, str]]:
    """(address, port, component, variable that moves it) for every port `up` will
    listen on: the services on KANSOKU_HOST, the embedded servers on loopback."""
    ports = [(settings.host, settings.service_port(s.name), s.name,
              topology.port_variable(s.name)) for s in topology.SERVICES]
    ports.append((settings.host, settings.explorer_otlp_port, "explorer OTLP receiver",
                  "KANSOKU_EXPLORER_OTLP_PORT"))
    if settings.smtp_url is None:
        ports.append((LOOPBACK, settings.worker_smtp_port, "the worker's mailbox (SMTP)",
                      "KANSOKU_WORKER_SMTP_PORT"))
    if settings.database_url is None:
        ports.append((LOOPBACK, settings.postgres_port, "postgresql", "KANSOKU_POSTGRES_PORT"))
    if settings.nats_url is None:
        ports.append((LOOPBACK, settings.nats_port, "nats", "KANSOKU_NATS_PORT"))
    if settings.redis_url is None:
        ports.append((LOOPBACK, settings.valkey_port, "valkey", "KANSOKU_VALKEY_PORT"))
    return ports


def check_ports(settings: StackSettings) -> None:
    seen: dict[int, str] = {}
    for host, port, component, variable in planned_ports(settings):
        if port in seen:
            raise PreflightFailed(_(
                "port {port} is configured for both {first} and {second} — give one of "
                "them another port with {variable}").format(
                port=port, first=seen[port], second=component, variable=variable))
        seen[port] = component
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                problem = (_("port {port} for {component} on {host} is already in use — "
                             "stop what is using it, or move {component} with "
                             "{variable}=<another port>")
                           if exc.errno == errno.EADDRINUSE else
                           _("port {port} for {component} on {host} cannot be used "
                             "({error}) — stop what is using it, or move {component} with "
                             "{variable}=<another port>"))
                raise PreflightFailed(problem.format(
                    port=port, component=component, host=host, variable=variable,
                    error=exc.strerror)) from exc


def check_binaries(settings: StackSettings) -> None:
    try:
        if settings.database_url is None:
            infra.postgres_bin_dir(settings.postgres_bin_dir)
        if settings.nats_url is None:
            infra.nats_server_bin(settings.nats_server_bin)
        if settings.redis_url is None:
            infra.valkey_server_bin(settings.valkey_server_bin)
    except infra.BinaryMissing as exc:
        raise PreflightFailed(str(exc)) from exc


async def _check_tcp(url: str, default_port: int) -> None:
    parts = urlsplit(url)
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or default_port), 5)
    writer.close()
    await writer.wait_closed()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return _("no answer within 5s")
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


async def check_external(settings: StackSettings) -> None:
    """External servers the user pointed at must answer before anything starts."""
    if settings.database_url is not None:
        try:
            await check_reachable(settings.database_url, timeout=5)
        except Exception as exc:
            raise PreflightFailed(_(
                "cannot reach the database at {url} ({error}) — check "
                "KANSOKU_DATABASE_URL, or unset it to use the embedded PostgreSQL").format(
                url=redact_url(settings.database_url), error=_reason(exc))) from exc
    for url, variable, port, what in (
        (settings.nats_url, "KANSOKU_NATS_URL", 4222, "NATS"),
        (settings.redis_url, "KANSOKU_REDIS_URL", 6379, "Valkey/Redis"),
    ):
        if url is None:
            continue
        try:
            await _check_tcp(url, port)
        except Exception as exc:
            raise PreflightFailed(_(
                "cannot reach {server} at {url} ({error}) — check {variable}, or unset it "
                "to use the embedded server").format(server=what, url=redact_url(url),
                                                     error=_reason(exc), variable=variable)
            ) from exc


def run_preflight(settings: StackSettings) -> None:
    check_data_dir(settings.data_dir)
    check_not_running(settings)
    check_binaries(settings)
    check_ports(settings)
    asyncio.run(check_external(settings))
