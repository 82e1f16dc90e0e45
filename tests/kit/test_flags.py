"""The services' view of the fault flags: changes seen through the OpenFeature SDK (flagd
provider, file mode) within a bound, evaluated as the kinds they are given, and the
effects of an active fault on the span. The kit knows no flag of the shop's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kansoku.faults import flagfile
from kansoku.faults.catalogue import FLAG_KINDS, FLAGS
from kansoku.kit import semconv
from kansoku.kit.flagkinds import FlagKind
from kansoku.kit.flags import ActiveFault, FaultFlags

#: How long a change may take to reach a service: the provider polls every 0.5 s.
RELOAD_BOUND_SECONDS = 2.0


def wait_for(condition: object, timeout: float = RELOAD_BOUND_SECONDS) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "not seen in time"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    return tmp_path / "flags.json"


@pytest.fixture
def watching(flags_file: Path) -> Iterator[FaultFlags]:
    flagfile.reset(flags_file)
    watcher = FaultFlags(flags_file, "test", FLAG_KINDS)
    watcher.start()
    yield watcher
    watcher.close()


def test_a_service_sees_a_change_through_openfeature_within_the_bound(
        flags_file: Path, watching: FaultFlags) -> None:
    assert watching.active("paymentFailure") is None
    flagfile.set_variant(flags_file, "paymentFailure", "75%")
    seconds = wait_for(lambda: watching.variant("paymentFailure") == "75%")
    fault = watching.active("paymentFailure")
    assert fault is not None and fault.value == 0.75 and seconds < RELOAD_BOUND_SECONDS
    flagfile.set_variant(flags_file, "cartCacheOutage", "on")
    wait_for(lambda: watching.active("cartCacheOutage") is not None)
    flagfile.reset(flags_file)
    wait_for(lambda: not watching.active("paymentFailure")
             and not watching.active("cartCacheOutage"))


def test_listeners_hear_of_changes(flags_file: Path, watching: FaultFlags) -> None:
    heard: list[str] = []
    watching.add_listener(lambda: heard.append(watching.variant("workerMemoryLeak")))
    flagfile.set_variant(flags_file, "workerMemoryLeak", "10x")
    wait_for(lambda: "10x" in heard)


def test_without_a_file_every_flag_is_off_until_it_appears(flags_file: Path) -> None:
    unset = FaultFlags(None, "test", FLAG_KINDS)
    unset.start()
    assert all(unset.active(name) is None for name in FLAGS)
    watcher = FaultFlags(flags_file, "test", FLAG_KINDS)
    watcher.start()
    try:
        assert watcher.variant("gatewayCpuHog") == "off"
        flagfile.set_variant(flags_file, "gatewayCpuHog", "on")
        wait_for(lambda: watcher.variant("gatewayCpuHog") == "on", timeout=3.0)
    finally:
        watcher.close()


def test_only_the_flags_given_are_evaluated_each_as_its_kind(flags_file: Path) -> None:
    def flag(variants: dict[str, bool | float], variant: str) -> dict[str, object]:
        return {"state": "ENABLED", "variants": variants, "defaultVariant": variant}

    flags_file.write_text(json.dumps({"flags": {
        "tableFlip": flag({"off": False, "on": True}, "on"),
        "slowSoup": flag({"off": 0.0, "2s": 2.0}, "2s"),
        "someErrors": flag({"off": 0.0, "30%": 0.3}, "30%"),
        "notOurs": flag({"off": False, "on": True}, "on"),
    }}))
    watcher = FaultFlags(flags_file, "test", {"tableFlip": FlagKind.SWITCH,
                                              "slowSoup": FlagKind.AMOUNT,
                                              "someErrors": FlagKind.SHARE})
    watcher.start()
    try:
        assert watcher.active("tableFlip") == ActiveFault("tableFlip", "on", True,
                                                          FlagKind.SWITCH)
        assert watcher.active("slowSoup") == ActiveFault("slowSoup", "2s", 2.0,
                                                         FlagKind.AMOUNT)
        assert watcher.active("someErrors") == ActiveFault("someErrors", "30%", 0.3,
                                                           FlagKind.SHARE)
        assert watcher.active("notOurs") is None, "a flag it was not given stays off"
    finally:
        watcher.close()


def test_percentages_hit_about_that_share() -> None:
    fault = ActiveFault("inventoryFailure", "50%", 0.5, FlagKind.SHARE)
    hits = sum(fault.hits() for _ in range(2000))
    assert 850 < hits < 1150
    assert all(ActiveFault("inventoryFailure", "100%", 1.0, FlagKind.SHARE).hits()
               for _ in range(50))
    assert ActiveFault("paymentLatency", "1s", 1.0, FlagKind.AMOUNT).hits(), \
        "not a share: always"


def test_a_failure_is_an_exception_on_the_span_and_marks_the_flag() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fault = ActiveFault("paymentFailure", "100%", 1.0, FlagKind.SHARE)
    with provider.get_tracer("test").start_as_current_span("POST /charges"):
        problem = fault.fail(RuntimeError("card network said no"), 500, "failed", "No.")
    assert (problem.status, problem.code) == (500, "failed")
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert attributes[semconv.FEATURE_FLAG_KEY] == "paymentFailure"
    assert attributes[semconv.FEATURE_FLAG_VARIANT] == "100%"
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert (event.attributes or {})[semconv.EXCEPTION_TYPE] == "RuntimeError"


@pytest.mark.parametrize("module", ["kansoku.kit.flags", "kansoku.kit.app"])
def test_the_kit_evaluates_flags_without_the_shops_catalogue(module: str) -> None:
    # A fresh interpreter: this one has long imported the catalogue for the tests above.
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(*sorted(sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert module in loaded
    assert not [name for name in loaded
                if name.startswith(("kansoku.faults", "kansoku.services"))]
