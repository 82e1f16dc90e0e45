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
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports

from benchmarks._stacks import (
    Load,
    Processes,
    context_switches,
    cpu_seconds,
    load_average,
    migrate,
    product_paths,
    service_environment,
    services_ready,
    start_infrastructure,
    variant,
)
from kansoku import topology

#: Issue 25's goal for both ratios: telemetry on keeps 85 % of the throughput (and the
#: CPU per request) of telemetry off.
GOAL_TAX_RATIO = 0.85

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
        from kansoku.explorer.ingest import otlp
        from kansoku.explorer.store import LOGS, SPANS

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
        for found in rows("/v1/traces", SPANS, ExportTraceServiceRequest, otlp.span_rows):
            columns = dict(zip(found.table.names, found.values))
            for service, name, span_id in zip(columns["service"], columns["name"],
                                              columns["span_id"]):
                spans[service] += 1
                names[f"{service}: {name}"] += 1
                repeated += span_id in seen
                seen.add(span_id)
        logs = collections.Counter()
        for found in rows("/v1/logs", LOGS, ExportLogsServiceRequest, otlp.log_rows):
            logs.update(found.values[found.table.names.index("service")])
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



#: Where CPU goes, by the module of a frame: a sample is charged to the innermost frame
#: that belongs to telemetry code, unless shop work (a driver, the web framework, a
#: service) runs inside it, as when an instrumentation wraps the call it traces.
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("export (encode, send)", ("(kansoku/kit/otlp_json", "(exporter/", "(export/__init__",
                               "(requests/", "(urllib3", "(_shared_internal", "(http/client")),
    ("sqlalchemy instrumentation", ("(sqlalchemy/engine.py", "(sqlalchemy/__init__.py",
                                    "(_semconv.py", "(kansoku/kit/db_telemetry")),
    ("redis instrumentation", ("(redis/__init__.py", "(redis/util.py",
                               "(kansoku/kit/cache_telemetry")),
    ("logging", ("(_logs/", "(logging/handler.py", "(kansoku/kit/logging",
                 "(logging/__init__")),
    ("metrics", ("(metrics/",)),
    ("spans (sdk, api, context)", ("(trace/", "(context/", "(attributes/", "(propagat",
                                   "(baggage/", "(processor/", "(util/__init__",
                                   "(_decorator", "(instrumentation/utils")),
)
_SHOP_WORK = ("(redis/asyncio", "(redis/_parsers", "(asyncpg", "(sqlalchemy/orm",
              "(sqlalchemy/sql", "(sqlalchemy/engine/", "(sqlalchemy/pool",
              "(kansoku/services", "(httpcore", "(httpx", "(anyio", "(fastapi",
              "(starlette", "(pydantic")
_IDLE = ("Condition.wait", "select (", "epoll", "_run_once (", "sleep (")


def profile_categories(stacks: Path) -> dict[str, int]:
    """Busy samples by category in one py-spy raw file (idle waits left out)."""
    counts: dict[str, int] = {}
    for line in stacks.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or any(mark in frames[-1] for mark in _IDLE):
            continue
        category, telemetry_depth, shop_depth = "", -1, -1
        for depth, frame in enumerate(frames):
            found = next((name for name, marks in PROFILE_CATEGORIES
                          if any(mark in frame for mark in marks)), None)
            if found:
                category, telemetry_depth = found, depth
            if any(mark in frame for mark in _SHOP_WORK):
                shop_depth = depth
        if shop_depth > telemetry_depth or telemetry_depth < 0:
            # The shop's own work, by the package of the innermost frame: what grows
            # here with telemetry on is paid indirectly (bigger headers, more garbage).
            leaf = frames[-1].rpartition("(")[2]
            category = f"shop: {leaf.split('/')[0] if '/' in leaf else leaf.split(':')[0]}"
        counts[category] = counts.get(category, 0) + int(number)
    return counts


def start_profiles(folder: Path, label: str, processes: list[psutil.Process],
                   seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each process for `seconds`, raw stacks into `folder`."""
    return [subprocess.Popen(
        ["py-spy", "record", "--pid", str(process.pid), "--duration", str(int(seconds)),
         "--rate", "250", "--format", "raw", "--nonblocking",
         "--output", str(folder / f"{label}-{process.pid}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for process in processes]


def print_profile(folder: Path, per_request: dict[str, float]) -> None:
    """CPU per request by category, on beside off: where the tax goes."""
    shares: dict[str, dict[str, float]] = {}
    for mode in per_request:
        counts: dict[str, int] = {}
        for stacks in folder.glob(f"*-{mode}-*.txt"):
            for category, number in profile_categories(stacks).items():
                counts[category] = counts.get(category, 0) + number
        total = sum(counts.values()) or 1
        shares[mode] = {category: number / total for category, number in counts.items()}
    names = sorted({name for mode in shares.values() for name in mode},
                   key=lambda name: (name.startswith("shop"),
                                     -abs(shares["on"].get(name, 0) * per_request["on"]
                                          - shares["off"].get(name, 0) * per_request["off"])))
    print("\nCPU per request by where it goes (py-spy samples x CPU/request), ms:")
    print(f"  {'':28} {'on':>6} {'off':>6} {'on-off':>7}")
    for name in names[:len(PROFILE_CATEGORIES) + 12]:
        on, off = (shares[mode].get(name, 0) * per_request[mode] for mode in ("on", "off"))
        print(f"  {name[:28]:28} {on:6.2f} {off:6.2f} {on - off:7.2f}")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="on/off pairs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3, help="seconds, each set")
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        metavar="LABEL:VAR=VALUE[,VAR=VALUE]",
                        help="also measure telemetry on with these variables changed, e.g. "
                             "no-span-export:OTEL_TRACES_EXPORTER=none (repeatable)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record each round with py-spy (pip install py-spy) into DIR "
                             "and print CPU per request by category, on beside off")
    args = parser.parse_args()
    if args.profile:
        if shutil.which("py-spy") is None:
            sys.exit("--profile needs py-spy on PATH: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="kansoku-bench-") as temporary:
        root = Path(temporary)
        root.chmod(0o755)  # PostgreSQL may run as nobody
        processes = Processes(root)
        try:
            shared = start_infrastructure(processes)
            shared["KANSOKU_SERVICE_SECRET"] = secrets.token_hex(32)
            migrate(shared)
            sink_port, variants_sink_port = free_ports(2)
            processes.start("sink", [sys.executable, "-c", NULL_SINK, str(sink_port)])
            telemetry_on = {"OTEL_TRACES_SAMPLER": "always_on",
                            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}
            envs = {
                "on": service_environment(shared, telemetry_on),
                "off": service_environment(shared, {"OTEL_SDK_DISABLED": "true"}),
            }
            if args.variant:
                # A sink of their own, so the counts below stay those of the "on" set.
                processes.start("variants-sink", [sys.executable, "-c", NULL_SINK,
                                                  str(variants_sink_port)])
            for label, changes in args.variant:
                envs[label] = service_environment(shared, {
                    **telemetry_on,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{variants_sink_port}",
                    **changes})
            pids = {}
            for mode, env in envs.items():
                for service in PAIR:
                    pids[f"{service}-{mode}"] = processes.start(
                        f"{service}-{mode}", [sys.executable, "-m", "kansoku", "serve", service],
                        env=env).pid
            asyncio.run(services_ready(envs, PAIR))
            gateways = {mode: int(env[topology.port_variable("gateway")])
                        for mode, env in envs.items()}
            print(f"ready: gateway on :{gateways['on']}, off :{gateways['off']}; "
                  f"logs in {root}; pids {pids}", flush=True)
            services = {mode: [psutil.Process(pids[f"{service}-{mode}"]) for service in PAIR]
                        for mode in envs}
            paths = product_paths(gateways["off"])
            loads = {mode: Load(port, paths) for mode, port in gateways.items()}
            modes = list(envs)
            sent = dict.fromkeys(modes, 0)
            for mode in modes:
                ok, failed = asyncio.run(loads[mode].run(args.warmup, args.concurrency))
                sent[mode] += ok + failed
            rates: dict[str, list[float]] = {mode: [] for mode in modes}
            failures = dict.fromkeys(modes, 0)
            # CPU seconds of the three services per request: unlike requests per second,
            # hardly moved by whatever else the machine is doing at the time.
            cpu = dict.fromkeys(modes, 0.0)
            answered = dict.fromkeys(modes, 0)
            switches = dict.fromkeys(modes, 0)
            for round_number in range(args.rounds):
                # Each round starts one set later, so no set always runs first.
                order = modes[round_number % len(modes):] + modes[:round_number % len(modes)]
                for mode in order:
                    profilers = (start_profiles(args.profile, f"r{round_number}-{mode}",
                                                services[mode], args.seconds)
                                 if args.profile else [])
                    before = cpu_seconds(services[mode])
                    switches_before = context_switches(services[mode])
                    ok, failed = asyncio.run(loads[mode].run(args.seconds, args.concurrency))
                    used = cpu_seconds(services[mode]) - before
                    switches[mode] += context_switches(services[mode]) - switches_before
                    cpu[mode] += used
                    answered[mode] += ok + failed
                    sent[mode] += ok + failed
                    failures[mode] += failed
                    rates[mode].append(ok / args.seconds)
                    for profiler in profilers:
                        profiler.wait(30)
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
    print(f"telemetry tax ratio on/off  {on / off:.3f}  (goal >= {GOAL_TAX_RATIO})")
    per_request = {mode: cpu[mode] / max(1, answered[mode]) * 1000 for mode in cpu}
    print(f"CPU of gateway+catalog+inventory per request: on {per_request['on']:.2f} ms, "
          f"off {per_request['off']:.2f} ms; ratio off/on "
          f"{per_request['off'] / per_request['on']:.3f} (the rps ratio if CPU were the limit; "
          f"goal >= {GOAL_TAX_RATIO})")
    print("context switches per request: " + ", ".join(
        f"{mode} {switches[mode] / max(1, answered[mode]):.1f}" for mode in modes))
    for label, changes in args.variant:
        rate = statistics.mean(rates[label])
        print(f"variant {label} ({', '.join(f'{k}={v}' for k, v in changes.items())}): "
              f"{rate:7.1f} rps, ratio to off {rate / off:.3f}; CPU {per_request[label]:.2f} "
              f"ms/request, ratio off/{label} {per_request['off'] / per_request[label]:.3f}")
    if args.profile:
        print_profile(args.profile, per_request)
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
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
