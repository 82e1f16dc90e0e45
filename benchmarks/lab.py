"""N+1 queries against their fix, through the gateway: latency and statements side by
side, for several page sizes (the N of N+1).

Run:  python benchmarks/lab.py [--rounds 30] [--limits 5,20,50,100] [--gateway URL]

Without --gateway, a private stack (temporary data directory, free ports) is started
and stopped; with it, the stack there is used (e.g. http://127.0.0.1:8000 for your own
`kansoku up`). Each round runs the problem and its twin one after the other, as the demo
customer, so both see the same machine; the order alternates between rounds. "Round
trip" is what the client waited; "in the lab" is the lab's own `execution_time`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import private_stack

CUSTOMER = {"email": "alice@example.com", "password": "alice-pass-1234"}


@dataclass
class Timings:
    """One operation's measurements at one page size."""

    round_trip: list[float] = field(default_factory=list)
    in_lab: list[float] = field(default_factory=list)
    statements: set[int] = field(default_factory=set)
    failures: int = 0

    def p(self, values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def row(self) -> str:
        if not self.round_trip:
            return f"{'(every call failed)':>40}"
        statements = "/".join(str(n) for n in sorted(self.statements))
        return (f"{statements:>10} {statistics.median(self.round_trip) * 1000:>9.1f} "
                f"{self.p(self.round_trip, 0.95):>9.1f} "
                f"{statistics.median(self.in_lab) * 1000:>9.1f}")


async def measure(base: str, limits: list[int], rounds: int
                  ) -> dict[tuple[int, bool], Timings]:
    results: dict[tuple[int, bool], Timings] = {}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=60) as client:
        login = await client.post("/auth/login", json=CUSTOMER)
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        async def once(limit: int, fixed: bool) -> None:
            timings = results.setdefault((limit, fixed), Timings())
            path = "/lab/n-plus-one" + ("/fixed" if fixed else "")
            started = time.perf_counter()
            answer = await client.post(path, headers=headers,
                                       json={"parameters": {"limit": limit}})
            elapsed = time.perf_counter() - started
            if answer.status_code != 200:
                timings.failures += 1
                return
            data = answer.json()["data"]
            timings.round_trip.append(elapsed)
            timings.in_lab.append(float(data["execution_time"]))
            timings.statements.add(int(data["query_count"]))

        for limit in limits:  # warm both up: connections, prepared statements, caches
            await once(limit, False)
            await once(limit, True)
            results.clear()
        for number in range(rounds):
            for limit in limits:
                order = (False, True) if number % 2 == 0 else (True, False)
                for fixed in order:
                    await once(limit, fixed)
    return results


def report(results: dict[tuple[int, bool], Timings], limits: list[int], rounds: int) -> None:
    print(f"N+1 against its fix through the gateway, {rounds} rounds each "
          "(milliseconds; round trip as the client saw it, p50 and p95; in the lab p50)")
    print(f"{'N':>4}  {'operation':<16}{'statements':>10} {'trip p50':>9} {'trip p95':>9} "
          f"{'lab p50':>9}")
    for limit in limits:
        problem, fixed = results[(limit, False)], results[(limit, True)]
        print(f"{limit:>4}  {'n_plus_one':<16}{problem.row()}")
        print(f"{'':>4}  {'n_plus_one_fixed':<16}{fixed.row()}")
        if problem.in_lab and fixed.in_lab:
            ratio = statistics.median(problem.in_lab) / statistics.median(fixed.in_lab)
            print(f"{'':>4}  the fix: {ratio:.1f}x faster in the lab, "
                  f"{max(problem.statements)} statements down to {max(fixed.statements)}")
        failures = problem.failures + fixed.failures
        if failures:
            print(f"{'':>4}  ({failures} calls failed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--limits", default="5,20,50,100",
                        help="page sizes, comma-separated (1 to 100)")
    parser.add_argument("--gateway", help="a running stack's gateway, e.g. "
                        "http://127.0.0.1:8000 (default: start a private stack)")
    args = parser.parse_args()
    limits = [int(limit) for limit in args.limits.split(",")]
    if args.gateway:
        results = asyncio.run(measure(args.gateway.rstrip("/"), limits, args.rounds))
    else:
        with private_stack(KANSOKU_GATEWAY_TRUST_INCOMING_USER="false") as env:
            base = f"http://127.0.0.1:{env['KANSOKU_GATEWAY_PORT']}"
            results = asyncio.run(measure(base, limits, args.rounds))
    report(results, limits, args.rounds)


if __name__ == "__main__":
    main()
