"""The child process of `kansoku load`: Locust, used as a library, driving the journeys.

    python -m kansoku.loadgen.runner --host URL --users N --spawn-rate R --duration S
                                     [--web-port P]

It talks to its parent in JSON lines on stdout, one object a line:

- `{"event": "web", "url": ...}` once Locust's web UI listens (with `--web-port`);
- `{"event": "progress", "elapsed": s, "users": n, "rps": x, "requests": n,
  "failures": n, "flood": bool}` every second;
- `{"event": "summary", "steps": [...], "total": {...}, "errors": [...]}` at the end,
  also after SIGTERM or SIGINT (how the parent stops a run early);
- `{"event": "error", "message": ...}` when the run could not start.

Locust's own log goes to stderr, which the parent keeps in a file. If the parent dies,
the run stops by itself: it checks its parent every second.

With `--flags-file`, the run watches the `loadFlood` fault flag there: while it is on,
it drives `FLOOD_FACTOR` times its users (a flash sale), and goes back when it is off.
"""

from __future__ import annotations

# Locust (through the journeys) first: it patches the standard library with gevent.
# isort: off
from kansoku.loadgen import journeys
# isort: on

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # (no stubs installed)
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, LocalRunner
from locust.stats import RequestStats, StatsEntry

#: How many times its users a run drives while the `loadFlood` flag is on.
FLOOD_FACTOR = 10
#: How often the flags file is read (a small file; reading it is cheap).
FLOOD_CHECK_SECONDS = 2.0

#: Locust reports response times in milliseconds; the summary keeps them so.
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _entry(entry: StatsEntry) -> dict[str, Any]:
    counted = entry.num_requests > 0
    return {
        "name": entry.name, "method": entry.method, "requests": entry.num_requests,
        "failures": entry.num_failures,
        **{key: (entry.get_response_time_percentile(value) if counted else None)
           for key, value in PERCENTILES.items()},
        "rps": round(entry.total_rps, 2),
    }


def summary(stats: RequestStats) -> dict[str, Any]:
    """Per journey step (a Locust request name; methods merged), the whole run, and the
    distinct failures with how often each happened."""
    merged: dict[str, StatsEntry] = {}
    for entry in stats.entries.values():
        if entry.name not in merged:
            merged[entry.name] = StatsEntry(stats, entry.name, "", use_response_times_cache=False)
        merged[entry.name].extend(entry)
    errors = sorted(
        ({"step": error.name, "method": error.method, "error": str(error.error),
          "occurrences": error.occurrences} for error in stats.errors.values()),
        key=lambda error: -int(str(error["occurrences"])))
    return {"steps": [_entry(entry) for entry in merged.values()],
            "total": _entry(stats.total), "errors": errors[:20]}


def _options(arguments: argparse.Namespace) -> Any:
    """Locust's own options, as its command line would make them: the web UI reads them
    (a start from the UI takes its users and rate from here)."""
    return get_parser(default_config_files=[]).parse_args([
        "--host", arguments.host, "--users", str(arguments.users),
        "--spawn-rate", str(arguments.spawn_rate)])


def _watch_parent(runner: LocalRunner, parent: int) -> None:
    while os.getppid() == parent:
        gevent.sleep(1)
    runner.quit()


class Flood:
    """Follows the `loadFlood` flag: FLOOD_FACTOR times the users while it is on."""

    def __init__(self, runner: LocalRunner, users: int, spawn_rate: float,
                 flags_file: Path | None) -> None:
        self.runner, self.users, self.spawn_rate = runner, users, spawn_rate
        self.flags_file = flags_file
        self.on = False

    def flag_on(self) -> bool:
        if self.flags_file is None:
            return False
        # Imported only when a flags file is followed: through the kit it loads FastAPI
        # and SQLAlchemy (over half a second), which a run without one never needs.
        from kansoku.faults.flagfile import current_variant
        from kansoku.kit.flagkinds import OFF

        return current_variant("loadFlood", self.flags_file) != OFF

    def follow(self) -> None:
        while self.runner.state not in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP):
            on = self.flag_on()
            if on != self.on:
                self.on = on
                users = self.users * FLOOD_FACTOR if on else self.users
                # A flash sale arrives at once; the calm after it too.
                logging.getLogger(__name__).info("loadFlood %s: %d users", on, users)
                self.runner.start(users, spawn_rate=max(self.spawn_rate, users / 5))
            gevent.sleep(FLOOD_CHECK_SECONDS)


def _report_progress(environment: Environment, runner: LocalRunner, flood: Flood,
                     started: float) -> None:
    while True:
        total = environment.stats.total
        emit("progress", elapsed=round(time.monotonic() - started, 1),
             users=runner.user_count, rps=round(total.current_rps, 1),
             requests=total.num_requests, failures=total.num_failures, flood=flood.on)
        gevent.sleep(1)


def run(arguments: argparse.Namespace) -> int:
    environment = Environment(user_classes=[journeys.Shopper], host=arguments.host,
                              parsed_options=_options(arguments), stop_timeout=10)
    runner = environment.create_local_runner()
    if arguments.web_port is not None:
        environment.create_web_ui("127.0.0.1", arguments.web_port)
        emit("web", url=f"http://127.0.0.1:{arguments.web_port}")
    try:
        # The catalog is read before the first user starts: a shop that cannot be read
        # is an error of the run, not a failure of every request.
        journeys.Catalog.load(arguments.host)
    except Exception as exc:
        emit("error", message=f"cannot read the shop's catalog at {arguments.host}: {exc}")
        runner.quit()
        return 2
    started = time.monotonic()
    gevent.signal_handler(signal.SIGTERM, runner.quit)
    gevent.signal_handler(signal.SIGINT, runner.quit)
    gevent.spawn(_watch_parent, runner, os.getppid())
    flood = Flood(runner, arguments.users, arguments.spawn_rate, arguments.flags_file)
    progress = gevent.spawn(_report_progress, environment, runner, flood, started)
    runner.start(arguments.users, spawn_rate=arguments.spawn_rate)
    following = gevent.spawn(flood.follow)
    if arguments.duration > 0:
        gevent.spawn_later(arguments.duration, runner.quit)
    runner.greenlet.join()
    progress.kill()
    following.kill()
    emit("summary", elapsed=round(time.monotonic() - started, 1), **summary(environment.stats))
    if environment.web_ui is not None:
        environment.web_ui.stop()  # type: ignore[no-untyped-call]
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kansoku.loadgen.runner")
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--spawn-rate", type=float, required=True)
    parser.add_argument("--duration", type=float, default=0.0,
                        help="seconds; 0 runs until SIGTERM")
    parser.add_argument("--web-port", type=int, default=None)
    parser.add_argument("--flags-file", type=Path, default=None)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arguments = parser.parse_args()
    # Locust's web UI parses the command line again, with its own parser, which does not
    # know these options: it gets an empty one (its options come from `_options`).
    sys.argv = sys.argv[:1]
    sys.exit(run(arguments))


if __name__ == "__main__":
    main()
