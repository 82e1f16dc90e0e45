"""Start-up time of `kansoku up` to all-ready, and the memory of the whole stack.

Run:  python benchmarks/startup.py [--runs N]

Starts a private stack (temporary data directory, free ports) N times: the first start
is cold (initdb, migrations, demo data), the others warm. For each it prints the seconds
until `kansoku up --detach` returned with everything ready, then the memory of every
process of the stack (RSS, and PSS, which shares shared pages fairly and so adds up).
Times on a shared 2-core machine are noisy: compare the ratios printed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import run_cli, stack_environment

MIB = 1024 * 1024


def stack_memory(state_file: Path) -> dict[str, tuple[float, float]]:
    """(RSS MiB, PSS MiB) per component, children included (PostgreSQL's backends)."""
    state = json.loads(state_file.read_text())
    entries = [("supervisor", state["supervisor"]["pid"])]
    entries += [(c["name"], c["pid"]) for c in state["components"] if c["pid"]]
    memory = {}
    for name, pid in entries:
        root = psutil.Process(pid)
        rss = pss = 0.0
        # The supervisor's children are the components, counted on their own lines.
        children = [] if name == "supervisor" else root.children(recursive=True)
        for process in [root, *children]:
            info = process.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        memory[name] = (rss / MIB, pss / MIB)
    return memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts in all (first is cold)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kansoku-bench-") as temporary:
        env = stack_environment(Path(temporary) / "data")
        timings: list[float] = []
        memory: dict[str, tuple[float, float]] = {}
        for run in range(args.runs):
            started = time.perf_counter()
            result = run_cli("up", "--detach", env=env, timeout=300)
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                sys.exit(f"kansoku up failed: {result.stderr.strip()}")
            timings.append(elapsed)
            print(f"start {run + 1} ({'cold' if run == 0 else 'warm'}): {elapsed:5.1f} s to ready")
            if run == args.runs - 1:
                time.sleep(3)  # let every service settle after its first requests
                memory = stack_memory(Path(env["KANSOKU_DATA_DIR"]) / "run" / "state.json")
            run_cli("down", env=env, timeout=120)

    print("\nmemory of the running stack (MiB)")
    print(f"  {'component':<12} {'RSS':>7} {'PSS':>7}")
    for name, (rss, pss) in sorted(memory.items(), key=lambda item: -item[1][1]):
        print(f"  {name:<12} {rss:7.1f} {pss:7.1f}")
    total_rss = sum(rss for rss, _ in memory.values())
    total_pss = sum(pss for _, pss in memory.values())
    infra_pss = sum(memory[name][1] for name in ("postgresql", "nats", "valkey")
                    if name in memory)
    print(f"  {'total':<12} {total_rss:7.1f} {total_pss:7.1f}")

    print("\nratios")
    if len(timings) > 1:
        warm = statistics.median(timings[1:])
        print(f"  warm start / cold start           {warm / timings[0]:.2f}")
        print(f"  warm start median                 {warm:.1f} s (goal: <= 20 s)")
    print(f"  infrastructure share of PSS       {infra_pss / total_pss:.2f}")
    print(f"  Python services share of PSS      {1 - infra_pss / total_pss:.2f}")


if __name__ == "__main__":
    main()
