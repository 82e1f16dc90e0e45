"""The telemetry tax: product-detail requests per second with full telemetry on (every
request sampled, exported over OTLP/HTTP) divided by the same with telemetry off, in one
run, side by side.

Run:  python benchmarks/telemetry_tax.py [--seconds 10] [--rounds 3] [--concurrency 16]

One PostgreSQL, Valkey and NATS (from the project's wheels, temporary directory, free
ports, migrated and seeded by `kansoku migrate`) serve two sets of the services a product
page needs — gateway, catalog, inventory, each `kansoku serve NAME` — side by side: one
set with `OTEL_TRACES_SAMPLER=always_on`, one with `OTEL_SDK_DISABLED=true`. Each round
drives `GET /api/v1/products/{id}` on one gateway (which asks catalog and inventory) at a
fixed concurrency, alternating on and off, so the drifts of a shared machine hit both
alike. The client is a few lines of raw HTTP/1.1 keep-alive, so the load generator costs
as little CPU as possible next to what it measures.

The "on" set exports over OTLP/HTTP to a null sink in its own process: it answers 200
and keeps the bodies, decoded only after the last round. So the figure is the tax the
services pay, not a backend's ingest. Spans and log records per request are counted from
what the sink received.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports

from kansoku import topology
from kansoku.stack import infra

#: The services one product page goes through.
PAIR = ("catalog", "inventory", "gateway")

#: An OTLP/HTTP receiver that answers every POST with 200 and an empty (valid) response,
#: keeps the bodies, and decodes them only when asked for `GET /stats`.
NULL_SINK = textwrap.dedent("""
    import asyncio, collections, json, sys
    bodies = collections.defaultdict(list)

    def stats():
        # Decoded with the explorer's own decoders, whichever encoding was sent.
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest)
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest)
        from kansoku.explorer import otlp

        def rows(path, table, message, to_rows):
            for is_json, body in bodies[path]:
                if is_json:
                    yield otlp.json_rows(table, body)
                else:
                    request = message()
                    otlp.parse(body, request)
                    yield to_rows(request)

        spans = collections.Counter()
        names = collections.Counter()
        seen = set()
        repeated = 0
        for found in rows("/v1/traces", "spans", ExportTraceServiceRequest, otlp.span_rows):
            columns = dict(zip(found.columns, found.values))
            for service, name, span_id in zip(columns["service"], columns["name"],
                                              columns["span_id"]):
                spans[service] += 1
                names[f"{service}: {name}"] += 1
                repeated += span_id in seen
                seen.add(span_id)
        logs = collections.Counter()
        for found in rows("/v1/logs", "logs", ExportLogsServiceRequest, otlp.log_rows):
            logs.update(found.values[found.columns.index("service")])
        return {"spans": spans, "span_names": names, "logs": logs, "repeated": repeated,
                "posts": {path: len(b) for path, b in bodies.items()},
                "bytes": {path: sum(len(body) for _, body in b)
                          for path, b in bodies.items()}}

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                lines = head.decode("latin-1").split("\\r\\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                is_json = False
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                    if line.lower().startswith("content-type:"):
                        is_json = "json" in line.lower()
                body = await reader.readexactly(length) if length else b""
                if method == "GET":
                    answer = json.dumps(stats()).encode()
                    kind = b"application/json"
                else:
                    bodies[path].append((is_json, body))
                    answer, kind = ((b"{}", b"application/json") if is_json
                                    else (b"", b"application/x-protobuf"))
                writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Type: " + kind +
                             b"\\r\\nContent-Length: " + str(len(answer)).encode() +
                             b"\\r\\n\\r\\n" + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
        async with server:
            await server.serve_forever()

    asyncio.run(main())
""")


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


def start_infrastructure(processes: Processes) -> dict[str, str]:
    """PostgreSQL (trusting loopback, as in the tests), Valkey and NATS; their URLs."""
    root = processes.root
    pg_port, valkey_port, nats_port = free_ports(3)
    bin_dir = infra.postgres_bin_dir(None)
    infra.prepare_postgres(root / "pgdata", bin_dir)
    processes.start("postgres", infra.postgres_command(bin_dir, root / "pgdata", "127.0.0.1",
                                                       pg_port),
                    run_as=infra.postgres_run_as(), stop=signal.SIGINT)
    processes.start("valkey", infra.valkey_command(infra.valkey_server_bin(None),
                                                   root / "valkey", "127.0.0.1", valkey_port))
    processes.start("nats", infra.nats_command(infra.nats_server_bin(None), root / "js",
                                               "127.0.0.1", nats_port))
    redis_url = f"redis://127.0.0.1:{valkey_port}/0"

    async def ready() -> None:
        await wait_until(lambda: infra.probe_postgres("127.0.0.1", pg_port), "PostgreSQL")
        await infra.create_database("127.0.0.1", pg_port)
        await wait_until(lambda: infra.probe_valkey(redis_url), "Valkey")
        await wait_until(lambda: infra.probe_nats("127.0.0.1", nats_port), "NATS")

    asyncio.run(ready())
    return {"KANSOKU_DATABASE_URL": infra.postgres_url("127.0.0.1", pg_port),
            "KANSOKU_REDIS_URL": redis_url,
            "KANSOKU_NATS_URL": f"nats://127.0.0.1:{nats_port}"}


def service_environment(shared: dict[str, str], telemetry: dict[str, str]) -> dict[str, str]:
    """What the supervisor would tell a service, with ports of this set's own."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KANSOKU_", "OTEL_"))}
    env.update(shared)
    for service, port in zip(topology.SERVICES_BY_NAME,
                             free_ports(len(topology.SERVICES_BY_NAME)), strict=True):
        env[topology.port_variable(service)] = str(port)
        env[topology.url_variable(service)] = f"http://127.0.0.1:{port}"
    env.update({
        "KANSOKU_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        "KANSOKU_GATEWAY_TRUST_INCOMING_USER": "false",
        # One client address at hundreds of requests a second: keep the limiter's Valkey
        # round trip, but never refuse.
        "KANSOKU_GATEWAY_RATE_LIMIT_PER_IP": "100000000",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
    })
    env.update(telemetry)
    return env


async def services_ready(envs: dict[str, dict[str, str]]) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for mode, env in envs.items():
            for service in PAIR:
                url = f"{env[topology.url_variable(service)]}/health/ready"

                async def probe(url: str = url) -> None:
                    (await client.get(url)).raise_for_status()

                await wait_until(probe, f"{service} ({mode})", timeout=120)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def product_paths(gateway: int) -> list[str]:
    """Paths of demo products that exist (the first page of the listing)."""
    base = f"http://127.0.0.1:{gateway}/api/v1"
    listing = httpx.get(f"{base}/products", params={"limit": 50}, timeout=10).json()
    return [f"/api/v1/products/{item['id']}" for item in listing["items"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="on/off pairs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3, help="seconds, each set")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kansoku-bench-") as temporary:
        root = Path(temporary)
        root.chmod(0o755)  # PostgreSQL may run as nobody
        processes = Processes(root)
        try:
            shared = start_infrastructure(processes)
            shared["KANSOKU_SERVICE_SECRET"] = secrets.token_hex(32)
            migrated = subprocess.run([sys.executable, "-m", "kansoku", "migrate"],
                                      env={**os.environ, **shared}, capture_output=True,
                                      text=True, timeout=300, check=False)
            if migrated.returncode != 0:
                sys.exit(f"kansoku migrate failed: {migrated.stderr.strip()[-2000:]}")
            (sink_port,) = free_ports(1)
            processes.start("sink", [sys.executable, "-c", NULL_SINK, str(sink_port)])
            envs = {
                "on": service_environment(shared, {
                    "OTEL_TRACES_SAMPLER": "always_on",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}),
                "off": service_environment(shared, {"OTEL_SDK_DISABLED": "true"}),
            }
            pids = {}
            for mode, env in envs.items():
                for service in PAIR:
                    pids[f"{service}-{mode}"] = processes.start(
                        f"{service}-{mode}", [sys.executable, "-m", "kansoku", "serve", service],
                        env=env).pid
            asyncio.run(services_ready(envs))
            gateways = {mode: int(env[topology.port_variable("gateway")])
                        for mode, env in envs.items()}
            print(f"ready: gateway on :{gateways['on']}, off :{gateways['off']}; "
                  f"logs in {root}; pids {pids}", flush=True)
            services = {mode: [psutil.Process(pids[f"{service}-{mode}"]) for service in PAIR]
                        for mode in envs}
            paths = product_paths(gateways["off"])
            loads = {mode: Load(port, paths) for mode, port in gateways.items()}
            sent = {"on": 0, "off": 0}
            for mode in ("on", "off"):
                ok, failed = asyncio.run(loads[mode].run(args.warmup, args.concurrency))
                sent[mode] += ok + failed
            rates: dict[str, list[float]] = {"on": [], "off": []}
            failures = {"on": 0, "off": 0}
            # CPU seconds of the three services per request: unlike requests per second,
            # hardly moved by whatever else the machine is doing at the time.
            cpu = {"on": 0.0, "off": 0.0}
            answered = {"on": 0, "off": 0}
            for round_number in range(args.rounds):
                order = ("on", "off") if round_number % 2 == 0 else ("off", "on")
                for mode in order:
                    before = cpu_seconds(services[mode])
                    ok, failed = asyncio.run(loads[mode].run(args.seconds, args.concurrency))
                    used = cpu_seconds(services[mode]) - before
                    cpu[mode] += used
                    answered[mode] += ok + failed
                    sent[mode] += ok + failed
                    failures[mode] += failed
                    rates[mode].append(ok / args.seconds)
                    print(f"round {round_number + 1} telemetry {mode:<3}  "
                          f"{ok / args.seconds:7.1f} rps  "
                          f"{used / max(1, ok + failed) * 1000:6.2f} ms CPU/request  "
                          f"({failed} not 200)", flush=True)
            time.sleep(6)  # the batch processors' default schedule delay is 5 s
            received = httpx.get(f"http://127.0.0.1:{sink_port}/stats", timeout=120).json()
        finally:
            processes.stop_all()

    on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
    print(f"\nproduct detail, concurrency {args.concurrency}, {args.rounds} x "
          f"{args.seconds:g} s each way")
    print(f"telemetry on   {on:7.1f} rps  (rounds "
          f"{', '.join(f'{r:.0f}' for r in rates['on'])}; {failures['on']} not 200)")
    print(f"telemetry off  {off:7.1f} rps  (rounds "
          f"{', '.join(f'{r:.0f}' for r in rates['off'])}; {failures['off']} not 200)")
    print(f"telemetry tax ratio on/off  {on / off:.3f}")
    per_request = {mode: cpu[mode] / max(1, answered[mode]) * 1000 for mode in cpu}
    print(f"CPU of gateway+catalog+inventory per request: on {per_request['on']:.2f} ms, "
          f"off {per_request['off']:.2f} ms; ratio off/on "
          f"{per_request['off'] / per_request['on']:.3f} (the rps ratio if CPU were the limit)")
    requests = sent["on"]
    spans = sum(received["spans"].values())
    logs = sum(received["logs"].values())
    print(f"\nexported for {requests} requests with telemetry on ("
          + ", ".join(f"{path} {count} posts" for path, count in received["posts"].items())
          + ")")
    print(f"spans per request        {spans / requests:.2f}  ("
          + ", ".join(f"{name} {count / requests:.2f}"
                      for name, count in sorted(received["spans"].items())) + ")")
    print(f"log records per request  {logs / requests:.2f}  ("
          + ", ".join(f"{name} {count / requests:.2f}"
                      for name, count in sorted(received["logs"].items())) + ")")
    print("OTLP bytes per request   " + ", ".join(
        f"{path} {size / requests:.0f}" for path, size in received["bytes"].items()))
    if received["repeated"]:
        print(f"spans received more than once (exporter retries): {received['repeated']}")
    print("spans by name, per request:")
    for name, count in sorted(received["span_names"].items(), key=lambda item: -item[1]):
        if count / requests >= 0.01:
            print(f"  {count / requests:5.2f}  {name}")


if __name__ == "__main__":
    main()
