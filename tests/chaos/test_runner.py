"""Experiments against a real stack of their own: the shipped payments outage (short),
a written one with a fault flag, a pause and a kill and no rollback, one whose
hypothesis does not hold to begin with, and one cut short with Ctrl-C. Each checks the
report and that the stack is left as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kansoku.faults import flagfile
from kansoku.kit import semconv
from kansoku.kit.flagkinds import OFF
from tests.support import read_state, run_cli, stack_environment


@dataclass
class Stack:
    env: dict[str, str]
    data_dir: Path

    def component(self, name: str) -> dict[str, Any]:
        state = read_state(self.data_dir / "run" / "state.json")
        assert state is not None
        return next(c for c in state["components"] if c["name"] == name)

    def flags_on(self) -> dict[str, str]:
        return {name: variant for name, variant
                in flagfile.read_variants(self.data_dir / "flags.json").items()
                if variant != OFF}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("chaos") / "data"
    env = {**stack_environment(data_dir), "COLUMNS": "200"}
    result = run_cli("up", "--detach", env=env, timeout=300)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield Stack(env, data_dir)
    finally:
        run_cli("down", env=env)


def chaos_run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("chaos", "run", *args, env=stack.env, timeout=120)


def rounds(report: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    return [found for found in report["rounds"] if found["phase"] == phase]


def probe(found: dict[str, Any], name: str) -> dict[str, Any]:
    return next(result for result in found["probes"] if result["probe"] == name)


def test_payments_outage_deviates_then_recovers(stack: Stack) -> None:
    restarts = stack.component("payments")["restarts"]
    ran = chaos_run(stack, "payments-outage", "--param", "outage=4s",
                    "--param", "recovery_timeout=40s", "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["title"] == "Payments outage"
    assert report["status"] == "recovered" and report["error"] is None
    assert report["held_before"] is True and report["deviated_during"] is True
    assert report["recovered"] is True and report["undone"] == []
    checkout, listing = "a customer checks out and pays", "the API lists products"

    (before,) = rounds(report, "before")
    assert before["held"] and "paid in" in probe(before, checkout)["detail"]
    during = rounds(report, "during")
    assert len(during) >= 3
    # Payments gone: checkouts fail cleanly with 503; browsing does not notice.
    failed = [probe(found, checkout) for found in during if not probe(found, checkout)["held"]]
    assert failed and all("paying answered 503" in result["detail"] for result in failed)
    assert all(probe(found, listing)["held"] for found in during)
    after = rounds(report, "after")
    assert after[-1]["held"] and not any(found["held"] for found in after[:-1])

    assert [(s["phase"], s["action"], s["ok"]) for s in report["steps"]] == [
        ("method", "stop payments", True), ("method", "wait 4s", True),
        ("rollback", "start payments", True)]
    assert report["steps"][1]["seconds"] == pytest.approx(4, abs=0.5)
    # The recovery time is measured from the end of the rollback to the end of the first
    # round that held, probed every second.
    rollback = report["steps"][2]
    ended = rollback["at"] + rollback["seconds"]
    assert report["rollback_seconds"] == pytest.approx(rollback["seconds"], abs=0.05)
    assert 0 < report["recovery_seconds"] < 40
    assert report["recovery_seconds"] >= after[-1]["at"] - ended
    assert report["since_rollback_began_seconds"] == pytest.approx(
        report["recovery_seconds"] + report["rollback_seconds"], abs=0.05)
    # The progress went to stderr; payments is back, and no restart was needed.
    assert "stop payments: stopped and held" in ran.stderr
    payments = stack.component("payments")
    assert payments["state"] == "running" and not payments["held"]
    assert payments["restarts"] == restarts
    # The run is a trace in the explorer: the experiment, its steps, its outcome.
    explorer = f"http://127.0.0.1:{stack.env['KANSOKU_EXPLORER_PORT']}"
    found = httpx.get(f"{explorer}/api/traces", timeout=10,
                      params={"service": "chaos", "lookback": "10m"}).json()["data"]
    spans = {span["operationName"]: {tag["key"]: tag["value"] for tag in span["tags"]}
             for trace in found for span in trace["spans"]}
    root = spans["chaos Payments outage"]
    assert root[semconv.CHAOS_STATUS] == "recovered"
    assert root[semconv.CHAOS_RECOVERY_SECONDS] == pytest.approx(
        report["recovery_seconds"], abs=0.01)
    assert spans["chaos method: stop payments"][semconv.CHAOS_PHASE] == "method"
    assert "chaos rollback: start payments" in spans


EXPERIMENT = """
title: Failing, frozen and killed payments
hypothesis:
  title: Customers can pay
  probes:
    - type: checkout
      timeout: 3s
    - type: ready
      component: payments
      timeout: 1s
method:
  - {action: set-flag, flag: paymentFailure, variant: 100%}
  - {action: wait, for: 2s}
  - {action: pause, component: payments, for: 2s}
  - {action: kill, component: payments}
probe_interval: 500ms
recovery_timeout: 45s
"""


def test_flags_pause_and_kill_are_put_back_without_a_rollback(stack: Stack,
                                                              tmp_path: Path) -> None:
    written = tmp_path / "payments.yaml"
    written.write_text(EXPERIMENT)
    before = stack.component("payments")
    ran = chaos_run(stack, str(written))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = " ".join(ran.stdout.split())  # the table and lines, unwrapped
    assert "set-flag paymentFailure=100%: was off" in out
    assert "pause payments for 2s: 1 process frozen, then resumed" in out
    assert f"kill payments: pid {before['pid']} killed; the supervisor restarts it" in out
    # No rollback step: the runner itself put the flag back, and says so.
    assert "put back: set paymentFailure back to off" in out
    assert "paying answered 503" in out  # the flag at work
    assert "During the method the hypothesis failed in" in out
    assert "Recovered: the hypothesis held again" in out
    assert "Result: recovered in" in out
    assert stack.flags_on() == {}
    payments = stack.component("payments")
    assert payments["state"] == "running" and payments["pid"] != before["pid"]
    assert payments["restarts"] == before["restarts"] + 1


def test_a_hypothesis_that_does_not_hold_first_changes_nothing(stack: Stack,
                                                               tmp_path: Path) -> None:
    written = tmp_path / "broken-shop.yaml"
    written.write_text("""
title: Nothing to prove
hypothesis:
  title: Product 999999 is for sale
  probes:
    - {type: http, path: /api/v1/products/999999}
method:
  - {action: set-flag, flag: paymentFailure, variant: 100%}
  - {action: stop, component: payments}
""")
    ran = chaos_run(stack, str(written), "--json")
    assert ran.returncode == 1
    report = json.loads(ran.stdout)
    assert report["status"] == "aborted" and report["held_before"] is False
    assert report["steps"] == [] and report["recovered"] is None
    assert report["error"].startswith(
        "the hypothesis did not hold before the method (GET gateway /api/v1/products/999999 "
        "answers 200: answered 404 (product-not-found)) — nothing was changed")
    assert stack.flags_on() == {} and stack.component("payments")["state"] == "running"


def test_ctrl_c_goes_straight_to_the_rollback(stack: Stack) -> None:
    run = subprocess.Popen([sys.executable, "-m", "kansoku", "chaos", "run",
                            "payments-outage", "--param", "outage=2m", "--json"],
                           env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 60
        while not (stack.component("payments")["held"]
                   and stack.component("payments")["state"] == "stopped"):
            assert time.monotonic() < deadline, "payments was not stopped within 60 s"
            assert run.poll() is None, run.communicate()
            time.sleep(0.1)
        time.sleep(1)  # the runner notices and goes on to the wait
        os.kill(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, err
    report = json.loads(out)
    assert report["status"] == "interrupted" and report["recovered"] is None
    assert "interrupted — rolling back" in err
    steps = [(s["phase"], s["action"], s["ok"], s["detail"]) for s in report["steps"]]
    assert ("method", "wait 2m", False, "interrupted") in steps
    assert steps[-1] == ("rollback", "start payments", True, "running and ready")
    assert report["duration_seconds"] < 60
    payments = stack.component("payments")
    assert payments["state"] == "running" and not payments["held"]
