"""The command line's start: CPU (user + system) and wall time of `kansoku --help`,
`kansoku --lang ja --help` and `kansoku status`, with no stack and against a running one.

Run:  python benchmarks/cli.py [--runs 15] [--no-stack] [--compile]
                               [--variant LABEL:VAR=VALUE[,VAR=VALUE]] …

Each command runs `--runs` times per set, the sets' runs interleaved (this checkout, then
each `--variant`, then this checkout again …), so a change in the machine's load falls on
every set alike. It prints the best and the median of each: the best is the run least
disturbed, the median the typical one. `status` against a running stack starts one
private stack (tests/support.py's `private_stack`: temporary data directory, free ports)
and stops it at the end; `--no-stack` leaves it out. Compare another checkout of kansoku
through `PYTHONPATH`, as the other benchmarks do:

    python benchmarks/cli.py --variant main:PYTHONPATH=/path/to/main/src

The commands read their modules compiled, as an installed kansoku does (pip compiles
them; a checkout writes `__pycache__` on its first run): each set has a bytecode cache of
its own (PYTHONPYCACHEPREFIX), filled by one untimed run of each command. With
PYTHONDONTWRITEBYTECODE=1 and no `__pycache__` beside the sources, Python compiles
every kansoku module at every start instead — some 30 ms more on a 2-core machine;
`--compile` measures that.

startup.py measures the same commands (best of 5) among the stack's other figures, in
the environment it is run in.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import private_stack, stack_environment

from benchmarks._stacks import variant

#: The goal of issue 25 for `--help` and `status`, CPU seconds on a 2-core machine.
GOAL_CLI_SECONDS = 0.25


def run_once(arguments: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU (user + system) and wall seconds of `python -m kansoku ARGUMENTS…`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kansoku", *arguments], env=env,
                          capture_output=True, check=False, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"kansoku {' '.join(arguments)} failed: {done.stderr.decode()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def bytecode(compile_every_time: bool, cache: Path) -> dict[str, str]:
    """The variables that make Python read compiled modules from `cache` (written by the
    first run), or compile kansoku's at every start."""
    if compile_every_time:
        return {"PYTHONDONTWRITEBYTECODE": "1"}
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(cache)}


@contextlib.contextmanager
def maybe_stack(wanted: bool) -> Iterator[dict[str, str] | None]:
    if not wanted:
        yield None
        return
    with private_stack() as env:
        yield env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command per set")
    parser.add_argument("--no-stack", action="store_true",
                        help="leave out `status` against a running stack")
    parser.add_argument("--compile", action="store_true",
                        help="compile kansoku's modules at every start "
                             "(PYTHONDONTWRITEBYTECODE=1) rather than read them compiled")
    parser.add_argument("--variant", action="append", default=[], type=variant,
                        help="LABEL:VAR=VALUE[,VAR=VALUE], measured beside this checkout")
    args = parser.parse_args()

    sets = [("this", {}), *args.variant]
    with tempfile.TemporaryDirectory(prefix="kansoku-cli-") as temporary, \
            maybe_stack(not args.no_stack) as running:
        for index, (set_label, changes) in enumerate(sets):
            sets[index] = (set_label, {**changes, **bytecode(
                args.compile, Path(temporary) / "pycache" / set_label)})
        idle = stack_environment(Path(temporary) / "no-stack")
        commands: list[tuple[str, list[str], dict[str, str]]] = [
            ("kansoku --help", ["--help"], idle),
            ("kansoku --lang ja --help", ["--lang", "ja", "--help"], idle),
            ("kansoku status (no stack)", ["status"], idle),
        ]
        if running is not None:
            commands.append(("kansoku status (running)", ["status"], running))
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _label, arguments, env in commands:  # untimed: fills the bytecode caches
            for _, changes in sets:
                run_once(arguments, {**env, **changes})
        for _ in range(args.runs):
            for label, arguments, env in commands:
                for set_label, changes in sets:
                    times.setdefault((label, set_label), []).append(
                        run_once(arguments, {**env, **changes}))

    print(f"\n{args.runs} interleaved runs each; CPU is user + system, in seconds "
          f"(goal <= {GOAL_CLI_SECONDS} s); modules "
          f"{'compiled at every start' if args.compile else 'read compiled'}")
    header = "".join(f"  {s + ' best':>10} {s + ' median':>12}" for s, _ in sets)
    print(f"  {'command':<28}{header}   wall median")
    for label, _, _ in commands:
        cells = ""
        walls = []
        for set_label, _ in sets:
            measured = times[(label, set_label)]
            cpu = [c for c, _ in measured]
            cells += f"  {min(cpu):10.3f} {statistics.median(cpu):12.3f}"
            walls.append(f"{statistics.median([w for _, w in measured]):.3f}")
        print(f"  {label:<28}{cells}   {' / '.join(walls)}")
    if len(sets) > 1:
        print("\nmedian CPU, this checkout / the variant (below 1: this starts faster)")
        for set_label, _ in sets[1:]:
            ratios = [f"{label.removeprefix('kansoku ')} "
                      f"{statistics.median(c for c, _ in times[(label, 'this')]) / statistics.median(c for c, _ in times[(label, set_label)]):.2f}"  # noqa: E501
                      for label, _, _ in commands]
            print(f"  vs {set_label}: {', '.join(ratios)}")
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
