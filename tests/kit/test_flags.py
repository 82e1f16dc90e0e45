"""The fault flags file and the services' view of it: flagd's format written atomically,
clear errors for names and variants that do not exist, and changes seen through the
OpenFeature SDK (flagd provider, file mode) within a bound."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kansoku.kit import flags, semconv
from kansoku.kit.flags import FaultFlags, FlagError, FlagFileError

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
    flags.reset(flags_file)
    watcher = FaultFlags(flags_file, "test")
    watcher.start()
    yield watcher
    watcher.close()


def test_the_file_is_flagd_json_with_values_the_code_can_use(flags_file: Path) -> None:
    assert flags.set_variant(flags_file, "paymentfailure", "25%") == ("paymentFailure", "25%")
    flags.set_variant(flags_file, "paymentLatency", "3S")
    flags.set_variant(flags_file, "cartCacheOutage", "on")
    document = json.loads(flags_file.read_text())
    assert document["$schema"] == flags.FLAGD_SCHEMA
    payment = document["flags"]["paymentFailure"]
    assert payment["state"] == "ENABLED" and payment["defaultVariant"] == "25%"
    assert payment["variants"]["25%"] == 0.25 and payment["variants"]["off"] == 0
    assert document["flags"]["paymentLatency"]["variants"]["3s"] == 3.0
    assert document["flags"]["cartCacheOutage"]["variants"] == {"off": False, "on": True}
    assert set(document["flags"]) == set(flags.FLAGS)
    variants = flags.read_variants(flags_file)
    assert (variants["paymentFailure"], variants["paymentLatency"],
            variants["cartCacheOutage"], variants["loadFlood"]) == ("25%", "3s", "on", "off")
    assert flags.current_variant("paymentFailure", flags_file) == "25%"


def test_reset_turns_everything_off_and_keeps_flags_it_does_not_know(flags_file: Path
                                                                     ) -> None:
    flags.set_variant(flags_file, "inventoryFailure", "50%")
    document = json.loads(flags_file.read_text())
    document["flags"]["myOwnFlag"] = {"state": "ENABLED", "variants": {"a": 1},
                                      "defaultVariant": "a"}
    flags_file.write_text(json.dumps(document))
    flags.reset(flags_file)
    assert set(flags.read_variants(flags_file).values()) == {"off"}
    assert "myOwnFlag" in json.loads(flags_file.read_text())["flags"]
    # Written by rename: no temporary file is left behind.
    assert sorted(p.name for p in flags_file.parent.iterdir()) == ["flags.json",
                                                                  "flags.json.lock"]


def test_a_missing_file_means_every_flag_is_off(flags_file: Path) -> None:
    assert set(flags.read_variants(flags_file).values()) == {"off"}
    assert flags.current_variant("loadFlood", flags_file) == "off"


def test_bad_names_and_variants_name_the_valid_ones(flags_file: Path) -> None:
    with pytest.raises(FlagError) as unknown:
        flags.set_variant(flags_file, "paymentFailures", "on")
    assert "no fault flag 'paymentFailures'" in str(unknown.value)
    assert all(name in str(unknown.value) for name in flags.FLAGS)
    with pytest.raises(FlagError) as variant:
        flags.set_variant(flags_file, "paymentLatency", "2s")
    assert str(variant.value) == ("Flag paymentLatency has no variant '2s'. "
                                  "Variants: off, 1s, 3s.")
    assert not flags_file.exists(), "nothing was written"


def test_a_broken_file_is_reported_and_repaired_by_setting(flags_file: Path) -> None:
    flags_file.write_text("{not json")
    with pytest.raises(FlagFileError, match=r"not valid JSON .*kansoku flags reset"):
        flags.read_variants(flags_file)
    flags.set_variant(flags_file, "orderQueueLag", "on")
    assert flags.read_variants(flags_file)["orderQueueLag"] == "on"


def test_a_service_sees_a_change_through_openfeature_within_the_bound(
        flags_file: Path, watching: FaultFlags) -> None:
    assert watching.active("paymentFailure") is None
    flags.set_variant(flags_file, "paymentFailure", "75%")
    seconds = wait_for(lambda: watching.variant("paymentFailure") == "75%")
    fault = watching.active("paymentFailure")
    assert fault is not None and fault.value == 0.75 and seconds < RELOAD_BOUND_SECONDS
    flags.set_variant(flags_file, "cartCacheOutage", "on")
    wait_for(lambda: watching.active("cartCacheOutage") is not None)
    flags.reset(flags_file)
    wait_for(lambda: not watching.active("paymentFailure")
             and not watching.active("cartCacheOutage"))


def test_listeners_hear_of_changes(flags_file: Path, watching: FaultFlags) -> None:
    heard: list[str] = []
    watching.add_listener(lambda: heard.append(watching.variant("workerMemoryLeak")))
    flags.set_variant(flags_file, "workerMemoryLeak", "10x")
    wait_for(lambda: "10x" in heard)


def test_without_a_file_every_flag_is_off_until_it_appears(flags_file: Path) -> None:
    unset = FaultFlags(None, "test")
    unset.start()
    assert all(unset.active(name) is None for name in flags.FLAGS)
    watcher = FaultFlags(flags_file, "test")
    watcher.start()
    try:
        assert watcher.variant("gatewayCpuHog") == "off"
        flags.set_variant(flags_file, "gatewayCpuHog", "on")
        wait_for(lambda: watcher.variant("gatewayCpuHog") == "on", timeout=3.0)
    finally:
        watcher.close()


def test_percentages_hit_about_that_share() -> None:
    fault = flags.ActiveFault("inventoryFailure", "50%", 0.5)
    hits = sum(fault.hits() for _ in range(2000))
    assert 850 < hits < 1150
    assert all(flags.ActiveFault("inventoryFailure", "100%", 1.0).hits() for _ in range(50))
    assert flags.ActiveFault("paymentLatency", "1s", 1.0).hits(), "not a share: always"


def test_a_failure_is_an_exception_on_the_span_and_marks_the_flag() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fault = flags.ActiveFault("paymentFailure", "100%", 1.0)
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


def test_refusing_address_refuses() -> None:
    import socket

    host, port = flags.refusing_address()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=1)
