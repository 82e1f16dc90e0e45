"""The instrumentation approaches side by side: the same load under OpenTelemetry, the
AWS X-Ray SDK + EMF, the New Relic agent and no instrumentation, in alternating rounds,
printed as a Markdown table (docs/approaches.md).

Run:  python benchmarks/approaches.py [--seconds 10] [--rounds 3] [--concurrency 16]
                                      [--approach otel --approach xray …]

One PostgreSQL, Valkey and NATS (from the project's wheels, temporary directory, free
ports, migrated and seeded by `kansoku migrate`) serve one set of the services a
product page needs — gateway, catalog, inventory, each `kansoku serve NAME` — per
approach (`KANSOKU_INSTRUMENTATION`). Each instrumented set reports to an explorer of
its own (in memory, problem detection and alerts off), as it would to its backend: OTLP
for `otel` (every request sampled), the X-Ray and EMF intakes for `xray`, the New Relic
collector endpoint for `newrelic`. Each round drives `GET /api/v1/products/{id}` on each
set's gateway at a fixed concurrency, one set after the other, each round starting one
set later, so the drifts of a shared machine hit all alike (the load client is
`telemetry_tax.Load`, a few lines of raw HTTP/1.1).

The table: requests per second (mean of the rounds), CPU of the three services per
request (hardly moved by the rest of the machine), both as a share of `none`, and the
spans each request left in its explorer (counted after the last round, once the
agents have harvested: New Relic every 5 s, X-Ray at once, OpenTelemetry every second).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_ports

from benchmarks.telemetry_tax import (
    PAIR,
    Load,
    Processes,
    cpu_seconds,
    product_paths,
    service_environment,
    services_ready,
    start_infrastructure,
    wait_until,
)
from kansoku import topology
from kansoku.kit.approaches import Instrumentation

#: How long after the last round the agents are given to send what they hold (New
#: Relic harvests spans every 5 s).
SETTLE_SECONDS = 8.0


def explorer_environment(shared: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """An explorer of its own, in memory, on free ports; its environment and ports."""
    api, otlp, xray, emf, newrelic = free_ports(5)
    env = service_environment(shared, {})
    env.update({
        "KANSOKU_EXPLORER_PORT": str(api), "KANSOKU_EXPLORER_OTLP_PORT": str(otlp),
        "KANSOKU_EXPLORER_XRAY_PORT": str(xray), "KANSOKU_EXPLORER_EMF_PORT": str(emf),
        "KANSOKU_EXPLORER_NEWRELIC_PORT": str(newrelic),
        "KANSOKU_EXPLORER_DB_PATH": ":memory:",
        "KANSOKU_EXPLORER_PROBLEMS_ENABLED": "false",
        "KANSOKU_EXPLORER_ALERTS_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
    })
    return env, {"api": api, "otlp": otlp, "xray": xray, "emf": emf, "newrelic": newrelic}


def approach_environment(approach: Instrumentation, ports: dict[str, int] | None
                         ) -> dict[str, str]:
    """The variables that put a set of services on `approach`, reporting to `ports`."""
    env = {"KANSOKU_INSTRUMENTATION": approach.value}
    if ports is None:
        return env
    match approach:
        case Instrumentation.OTEL:
            env.update({"OTEL_TRACES_SAMPLER": "always_on",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['otlp']}"})
        case Instrumentation.XRAY:
            env.update({"AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{ports['xray']}",
                        "AWS_EMF_AGENT_ENDPOINT": f"udp://127.0.0.1:{ports['emf']}"})
        case Instrumentation.NEWRELIC:
            env.update({"NEW_RELIC_HOST": "127.0.0.1",
                        "NEW_RELIC_PORT": str(ports["newrelic"])})
        case Instrumentation.NONE:
            pass
    return env


def without_vendor_variables(env: dict[str, str]) -> dict[str, str]:
    """The environment minus any AWS or New Relic setting of the shell running this."""
    return {key: value for key, value in env.items()
            if not key.startswith(("AWS_", "NEW_RELIC_"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per round and approach")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3, help="seconds, each set")
    parser.add_argument("--approach", action="append", type=Instrumentation,
                        choices=list(Instrumentation),
                        help="measure only these (repeatable; default: all four)")
    args = parser.parse_args()
    approaches: list[Instrumentation] = args.approach or list(Instrumentation)
    if Instrumentation.NONE not in approaches:
        approaches.append(Instrumentation.NONE)  # the baseline every ratio divides by

    with tempfile.TemporaryDirectory(prefix="kansoku-approaches-") as temporary:
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
            explorers: dict[Instrumentation, dict[str, int]] = {}
            for approach in approaches:
                if approach == Instrumentation.NONE:
                    continue
                env, ports = explorer_environment(shared)
                processes.start(f"explorer-{approach}",
                                [sys.executable, "-m", "kansoku", "serve", "explorer"],
                                env=without_vendor_variables(env))
                explorers[approach] = ports

            async def explorers_ready() -> None:
                async with httpx.AsyncClient(timeout=2) as client:
                    for approach, ports in explorers.items():
                        url = f"http://127.0.0.1:{ports['api']}/health/ready"

                        async def probe(url: str = url) -> None:
                            (await client.get(url)).raise_for_status()

                        await wait_until(probe, f"explorer for {approach}", timeout=120)

            asyncio.run(explorers_ready())
            envs = {approach.value: {
                **without_vendor_variables(service_environment(shared, {})),
                **approach_environment(approach, explorers.get(approach))}
                for approach in approaches}
            pids = {}
            for mode, env in envs.items():
                for service in PAIR:
                    pids[f"{service}-{mode}"] = processes.start(
                        f"{service}-{mode}", [sys.executable, "-m", "kansoku", "serve", service],
                        env=env).pid
            asyncio.run(services_ready(envs))
            gateways = {mode: int(env[topology.port_variable("gateway")])
                        for mode, env in envs.items()}
            print(f"ready: gateways {gateways}; logs in {root}", flush=True)
            services = {mode: [psutil.Process(pids[f"{service}-{mode}"]) for service in PAIR]
                        for mode in envs}
            paths = product_paths(gateways[Instrumentation.NONE.value])
            loads = {mode: Load(port, paths) for mode, port in gateways.items()}
            modes = list(envs)
            sent = dict.fromkeys(modes, 0)
            for mode in modes:
                ok, failed = asyncio.run(loads[mode].run(args.warmup, args.concurrency))
                sent[mode] += ok + failed
            time.sleep(SETTLE_SECONDS)
            spans_before = {approach.value: received_spans(ports)
                            for approach, ports in explorers.items()}
            rates: dict[str, list[float]] = {mode: [] for mode in modes}
            failures = dict.fromkeys(modes, 0)
            cpu = dict.fromkeys(modes, 0.0)
            answered = dict.fromkeys(modes, 0)
            for round_number in range(args.rounds):
                order = modes[round_number % len(modes):] + modes[:round_number % len(modes)]
                for mode in order:
                    before = cpu_seconds(services[mode])
                    ok, failed = asyncio.run(loads[mode].run(args.seconds, args.concurrency))
                    used = cpu_seconds(services[mode]) - before
                    cpu[mode] += used
                    answered[mode] += ok + failed
                    failures[mode] += failed
                    rates[mode].append(ok / args.seconds)
                    print(f"round {round_number + 1} {mode:<9} {ok / args.seconds:7.1f} rps  "
                          f"{used / max(1, ok + failed) * 1000:6.2f} ms CPU/request  "
                          f"({failed} not 200)", flush=True)
            time.sleep(SETTLE_SECONDS)
            spans = {approach.value: received_spans(ports) - spans_before[approach.value]
                     for approach, ports in explorers.items()}
        finally:
            processes.stop_all()

    baseline = Instrumentation.NONE.value
    per_request = {mode: cpu[mode] / max(1, answered[mode]) * 1000 for mode in modes}
    rate = {mode: statistics.mean(rates[mode]) for mode in modes}
    print(f"\nproduct detail (gateway → catalog, inventory), concurrency {args.concurrency}, "
          f"{args.rounds} rounds x {args.seconds:g} s per approach\n")
    print("| approach | requests/s | of none | CPU ms/request | none's CPU / this | "
          "spans per request | not 200 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in modes:
        span_cell = (f"{spans[mode] / max(1, answered[mode]):.1f}" if mode in spans
                     else "-")
        print(f"| {mode} | {rate[mode]:.0f} ({', '.join(f'{r:.0f}' for r in rates[mode])}) "
              f"| {rate[mode] / rate[baseline]:.2f} | {per_request[mode]:.2f} "
              f"| {per_request[baseline] / per_request[mode]:.2f} | {span_cell} "
              f"| {failures[mode]} |")


def received_spans(ports: dict[str, int]) -> int:
    """How many spans an explorer has taken so far."""
    stats = httpx.get(f"http://127.0.0.1:{ports['api']}/api/stats", timeout=60).json()
    return int(stats["received"]["spans"])


if __name__ == "__main__":
    main()
