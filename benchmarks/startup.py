"""The weight of the stack: time to all-ready, memory per component idle and after load,
the command line's start, and migrations that find nothing to do.

Run:  python benchmarks/startup.py [--runs 3] [--load-seconds 60]
                                   [--variant LABEL:VAR=VALUE[,VAR=VALUE]] …

Starts a private stack (temporary data directory, free ports) `--runs` times: the first
start is cold (initdb, migrations, demo data), the others warm. After the last start it
measures, with the stack idle, every component's memory (RSS, and PSS, which divides
each shared page among the processes sharing it and so adds up), the CPU and wall time
of `kansoku --help`, `kansoku status` and `kansoku migrate` (schemas current); then it
runs paid checkouts for `--load-seconds` (benchmarks/checkout.py's customers) and
measures the memory again.

`--variant` adds sets measured the same way in the same run, their starts interleaved
with this checkout's: another checkout of kansoku through `PYTHONPATH`
(`main:PYTHONPATH=/work/main/src`) or other settings (`exec:KANSOKU_PREFORK=false`).
Times on a shared machine are noisy: compare the sets of one run, and quote the load
average printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import run_cli, stack_environment

from benchmarks._stacks import variant
from benchmarks.checkout import checkouts

MIB = 1024 * 1024
#: The goals of issue 25 on a 2-core machine.
GOAL_PSS_GB = 0.75
GOAL_WARM_START_SECONDS = 8.0
GOAL_CLI_SECONDS = 0.25


@dataclass
class Measured:
    label: str
    env: dict[str, str]
    starts: list[float] = field(default_factory=list)
    idle: dict[str, tuple[float, float]] = field(default_factory=dict)
    loaded: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: command → (best CPU seconds, best wall seconds)
    commands: dict[str, tuple[float, float]] = field(default_factory=dict)
    checkouts: int = 0


def stack_memory(state_file: Path) -> dict[str, tuple[float, float]]:
    """(RSS MiB, PSS MiB) per component, children included (PostgreSQL's backends); the
    supervisor and the services' template (which the services are forked from) each on
    a line of their own."""
    state = json.loads(state_file.read_text())
    supervisor = state["supervisor"]
    entries = [("supervisor", supervisor["pid"], False)]
    if supervisor.get("template_pid"):
        entries.append(("template", supervisor["template_pid"], False))
    entries += [(c["name"], c["pid"], True) for c in state["components"] if c["pid"]]
    memory = {}
    for name, pid, with_children in entries:
        root = psutil.Process(pid)
        processes = [root, *(root.children(recursive=True) if with_children else [])]
        rss = pss = 0.0
        for process in processes:
            info = process.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        memory[name] = (rss / MIB, pss / MIB)
    return memory


def command_cost(command: list[str], env: dict[str, str], repeats: int = 5
                 ) -> tuple[float, float]:
    """The least CPU (user + system) and the least wall time of `command` over
    `repeats` runs: on a busy machine the least is the one least disturbed."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False, timeout=120)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
    return best_cpu, best_wall


def database_url(env: dict[str, str]) -> str:
    data = Path(env["KANSOKU_DATA_DIR"])
    secret = (data / "secret").read_text().strip()
    return f"postgresql://postgres:{secret}@127.0.0.1:{env['KANSOKU_POSTGRES_PORT']}/kansoku"


def measure_running(measured: Measured, load_seconds: float) -> None:
    env = measured.env
    state_file = Path(env["KANSOKU_DATA_DIR"]) / "run" / "state.json"
    time.sleep(10)  # past every service's first requests and the synthetics' first round
    measured.idle = stack_memory(state_file)
    kansoku = [sys.executable, "-m", "kansoku"]
    measured.commands = {
        "kansoku --help": command_cost([*kansoku, "--help"], env),
        "kansoku status": command_cost([*kansoku, "status"], env),
        "kansoku migrate (current)": command_cost(
            [*kansoku, "migrate"], {**env, "KANSOKU_DATABASE_URL": database_url(env)}, 2),
    }
    if load_seconds > 0:
        base = f"http://127.0.0.1:{env['KANSOKU_GATEWAY_PORT']}/api/v1"
        _, latencies = asyncio.run(checkouts(base, load_seconds, 8))
        measured.checkouts = len(latencies)
        time.sleep(5)
        measured.loaded = stack_memory(state_file)


def print_memory(sets: list[Measured]) -> None:
    names = list(dict.fromkeys(name for s in sets for name in [*s.idle, *s.loaded]))
    header = "".join(f" {s.label + ' idle':>14} {s.label + ' load':>14}" for s in sets)
    print(f"\nPSS per component, MiB (RSS in brackets for idle){header}")
    for name in names:
        cells = ""
        for s in sets:
            rss, pss = s.idle.get(name, (0.0, 0.0))
            loaded = s.loaded.get(name, (0.0, 0.0))[1]
            cells += f" {pss:6.1f} ({rss:5.0f}) {loaded:14.1f}"
        print(f"  {name:<12}{cells}")
    cells = "".join(f" {sum(p for _, p in s.idle.values()):14.1f}"
                    f" {sum(p for _, p in s.loaded.values()):14.1f}" for s in sets)
    print(f"  {'total':<12}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts in all (first is cold)")
    parser.add_argument("--load-seconds", type=float, default=60,
                        help="paid checkouts between the two memory measurements")
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        help="LABEL:VAR=VALUE[,VAR=VALUE], measured beside this checkout")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kansoku-bench-") as temporary:
        sets = [Measured("this", stack_environment(Path(temporary) / "this" / "data"))]
        for label, changes in args.variant:
            env = stack_environment(Path(temporary) / label / "data")
            sets.append(Measured(label, {**env, **changes}))
        for run in range(args.runs):
            for measured in sets:
                started = time.perf_counter()
                result = run_cli("up", "--detach", env=measured.env, timeout=300)
                elapsed = time.perf_counter() - started
                if result.returncode != 0:
                    sys.exit(f"kansoku up failed ({measured.label}): {result.stderr.strip()}")
                measured.starts.append(elapsed)
                print(f"{measured.label}: start {run + 1} "
                      f"({'cold' if run == 0 else 'warm'}) {elapsed:5.1f} s to ready",
                      flush=True)
                if run == args.runs - 1:
                    measure_running(measured, args.load_seconds)
                run_cli("down", env=measured.env, timeout=120)

    print_memory(sets)
    print("\nstart and commands (best of several; CPU is user + system)")
    for s in sets:
        warm = statistics.median(s.starts[1:]) if len(s.starts) > 1 else float("nan")
        idle_gb = sum(p for _, p in s.idle.values()) * MIB / 1e9
        loaded_gb = sum(p for _, p in s.loaded.values()) * MIB / 1e9
        print(f"  {s.label}: cold start {s.starts[0]:.1f} s, warm {warm:.1f} s "
              f"(goal <= {GOAL_WARM_START_SECONDS:g} s); stack PSS {idle_gb:.2f} GB idle "
              f"(goal <= {GOAL_PSS_GB} GB), {loaded_gb:.2f} GB after "
              f"{s.checkouts} checkouts in {args.load_seconds:g} s")
        for command, (cpu, wall) in s.commands.items():
            goal = f" (goal <= {GOAL_CLI_SECONDS} s)" if "migrate" not in command else ""
            print(f"    {command:<28} {cpu:5.2f} s CPU, {wall:5.2f} s wall{goal}")
    if len(sets) > 1:
        this = sets[0]
        print("\nratios, this checkout / the variant (below 1: this is lighter or faster)")
        for other in sets[1:]:
            pss = sum(p for _, p in this.idle.values()) / sum(p for _, p in other.idle.values())
            warm = statistics.median(this.starts[1:] or this.starts) / statistics.median(
                other.starts[1:] or other.starts)
            cli = [f"{command.split()[1]} {this.commands[command][0] / cost[0]:.2f}"
                   for command, cost in other.commands.items() if command in this.commands]
            print(f"  vs {other.label}: PSS idle {pss:.2f}, warm start {warm:.2f}, "
                  f"CPU of {', '.join(cli)}")
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
