"""What the benchmarks that run services of their own share: child processes with a log
file each, the embedded PostgreSQL, Valkey and NATS on free ports, `kansoku migrate`,
each set of services' environment (ports of its own), waiting for readiness, a cheap
raw-HTTP load, CPU, memory and the machine's load.

`telemetry_tax.py` and `approaches.py` start the services they measure with this, each
as `kansoku serve NAME` in a process of its own (not `kansoku up`): two or four sets
side by side, one PostgreSQL for all, so the sets differ only in what they measure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports

from kansoku import topology
from kansoku.stack import infra

MIB = 1024 * 1024


class Load:
    """Keep-alive connections that each send one GET after another until a deadline."""

    def __init__(self, port: int, paths: list[str]) -> None:
        self.port = port
        self.requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
                         for path in paths]

    async def _connection(self, deadline: float, offset: int, counts: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        number = offset
        try:
            while time.monotonic() < deadline:
                writer.write(self.requests[number % len(self.requests)])
                number += 1
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                counts[0 if head[9:12] == b"200" else 1] += 1
        finally:
            writer.close()

    async def run(self, seconds: float, concurrency: int) -> tuple[int, int]:
        """(answers 200, other answers) in `seconds` with `concurrency` connections."""
        counts = [0, 0]
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self._connection(deadline, number * 7, counts)
                               for number in range(concurrency)))
        return counts[0], counts[1]


class Processes:
    """Child processes, each logging to a file, stopped in reverse order on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[tuple[subprocess.Popen[bytes], int]] = []

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None,
              run_as: tuple[int, int] | None = None, stop: int = signal.SIGTERM
              ) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env,
                user=run_as[0] if run_as else None, group=run_as[1] if run_as else None,
                extra_groups=[] if run_as else None)
        self.started.append((process, stop))
        return process

    def stop_all(self) -> None:
        for process, signum in reversed(self.started):
            process.send_signal(signum)
        for process, _ in reversed(self.started):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_until(probe: Callable[[], Awaitable[object]], what: str,
                     timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await probe()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready: {exc!r}") from exc
            await asyncio.sleep(0.2)


def start_nats(processes: Processes, name: str = "nats") -> str:
    """A NATS server with JetStream (its store under the processes' folder); its URL."""
    (port,) = free_ports(1)
    processes.start(name, infra.nats_command(infra.nats_server_bin(None),
                                             processes.root / f"{name}-js", "127.0.0.1", port))
    asyncio.run(wait_until(lambda: infra.probe_nats("127.0.0.1", port), name))
    return f"nats://127.0.0.1:{port}"


def start_infrastructure(processes: Processes) -> dict[str, str]:
    """PostgreSQL (trusting loopback, as in the tests), Valkey and NATS; their URLs."""
    root = processes.root
    pg_port, valkey_port = free_ports(2)
    bin_dir = infra.postgres_bin_dir(None)
    infra.prepare_postgres(root / "pgdata", bin_dir)
    processes.start("postgres", infra.postgres_command(bin_dir, root / "pgdata", "127.0.0.1",
                                                       pg_port),
                    run_as=infra.postgres_run_as(), stop=signal.SIGINT)
    processes.start("valkey", infra.valkey_command(infra.valkey_server_bin(None),
                                                   root / "valkey", "127.0.0.1", valkey_port))
    redis_url = f"redis://127.0.0.1:{valkey_port}/0"

    async def ready() -> None:
        await wait_until(lambda: infra.probe_postgres("127.0.0.1", pg_port), "PostgreSQL")
        await infra.create_database("127.0.0.1", pg_port)
        await wait_until(lambda: infra.probe_valkey(redis_url), "Valkey")

    asyncio.run(ready())
    return {"KANSOKU_DATABASE_URL": infra.postgres_url("127.0.0.1", pg_port),
            "KANSOKU_REDIS_URL": redis_url,
            "KANSOKU_NATS_URL": start_nats(processes)}


def migrate(shared: dict[str, str]) -> None:
    """`kansoku migrate` (schemas and demo data) into `shared`'s database; exits on
    failure with what it said."""
    migrated = subprocess.run([sys.executable, "-m", "kansoku", "migrate"],
                              env={**os.environ, **shared}, capture_output=True,
                              text=True, timeout=300, check=False)
    if migrated.returncode != 0:
        sys.exit(f"kansoku migrate failed: {migrated.stderr.strip()[-2000:]}")


def service_environment(shared: dict[str, str], telemetry: dict[str, str]) -> dict[str, str]:
    """What the supervisor would tell a service, with ports of this set's own."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KANSOKU_", "OTEL_"))}
    env.update(shared)
    for service, port in zip(topology.SERVICES_BY_NAME,
                             free_ports(len(topology.SERVICES_BY_NAME)), strict=True):
        env[topology.port_variable(service)] = str(port)
        env[topology.url_variable(service)] = f"http://127.0.0.1:{port}"
    (smtp_port,) = free_ports(1)
    env.update({
        "KANSOKU_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        "KANSOKU_WORKER_SMTP_PORT": str(smtp_port),
        "KANSOKU_GATEWAY_TRUST_INCOMING_USER": "false",
        # One client address at hundreds of requests a second: keep the limiter's Valkey
        # round trip, but never refuse.
        "KANSOKU_GATEWAY_RATE_LIMIT_PER_IP": "100000000",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
    })
    env.update(telemetry)
    return env


async def services_ready(envs: dict[str, dict[str, str]], services: Iterable[str]) -> None:
    """Until every one of `services` of every set in `envs` answers its readiness probe."""
    async with httpx.AsyncClient(timeout=2) as client:
        for mode, env in envs.items():
            for service in services:
                url = f"{env[topology.url_variable(service)]}/health/ready"

                async def probe(url: str = url) -> None:
                    (await client.get(url)).raise_for_status()

                await wait_until(probe, f"{service} ({mode})", timeout=180)


def context_switches(processes: list[psutil.Process]) -> int:
    """Context switches of the services so far: each is a trip through the kernel, and
    threads handing the GIL to each other (an exporter's, the event loop's) make them."""
    return sum(sum(process.num_ctx_switches()) for process in processes)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def pss_mib(process: psutil.Process) -> float:
    """A process's proportional set size in MiB: its private memory plus its share of
    each page it shares, so that processes' figures add up (RSS where there is no PSS)."""
    info = process.memory_full_info()
    return float(getattr(info, "pss", info.rss)) / MIB


def product_paths(gateway: int) -> list[str]:
    """Paths of demo products that exist (the first page of the listing)."""
    base = f"http://127.0.0.1:{gateway}/api/v1"
    listing = httpx.get(f"{base}/products", params={"limit": 50}, timeout=10).json()
    return [f"/api/v1/products/{item['id']}" for item in listing["items"]]


def load_average() -> str:
    """The machine's load average (1, 5, 15 minutes) and cores, to quote with a figure."""
    return (f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


def variant(text: str) -> tuple[str, dict[str, str]]:
    """`LABEL:VAR=VALUE,VAR=VALUE` from the command line."""
    label, _, assignments = text.partition(":")
    changes = dict(item.split("=", 1) for item in assignments.split(",") if "=" in item)
    if not label or label in ("on", "off") or not changes:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not LABEL:VAR=VALUE[,VAR=VALUE] with a label other than on/off")
    return label, changes
