"""Trace headers in a mixed shop (kit/approaches/propagation.py): which propagators an
OpenTelemetry service takes from the platform's approach variables, and which incoming
headers each approach cannot continue."""

from __future__ import annotations

import pytest
from opentelemetry import propagate, trace

from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation, propagation

XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
W3C = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"


def test_an_xray_neighbour_anywhere_gives_opentelemetry_services_the_xray_propagator(
) -> None:
    assert propagation.propagators_for({}) is None
    assert propagation.propagators_for({"KANSOKU_CART_INSTRUMENTATION": "newrelic"}) is None
    assert propagation.propagators_for({"KANSOKU_CATALOG_INSTRUMENTATION": "xray"}) == \
        ("xray", "tracecontext", "baggage")
    assert propagation.propagators_for({"KANSOKU_INSTRUMENTATION": "xray",
                                        "KANSOKU_ORDERS_INSTRUMENTATION": "otel"}) == \
        ("xray", "tracecontext", "baggage")
    # The standard variable, when set, is obeyed as it is.
    assert propagation.propagators_for({"KANSOKU_CATALOG_INSTRUMENTATION": "xray",
                                        "OTEL_PROPAGATORS": "b3"}) is None
    # A wrong value is the service's own to refuse; it chooses nothing here.
    assert propagation.approaches_in_use({"KANSOKU_CART_INSTRUMENTATION": "datadog"}) == \
        {Instrumentation.OTEL}
    assert propagation.approaches_in_use({"KANSOKU_INSTRUMENTATION": "newrelic"}) == \
        {Instrumentation.NEWRELIC}


def test_installed_the_propagators_read_and_write_the_xray_header() -> None:
    before = propagate.get_global_textmap()
    try:
        assert propagation.install_propagators(
            {"KANSOKU_CATALOG_INSTRUMENTATION": "xray"}) == ("xray", "tracecontext", "baggage")
        assert propagation.speaks_xray()
        context = propagate.extract({"X-Amzn-Trace-Id": XRAY})
        span_context = trace.get_current_span(context).get_span_context()
        assert format(span_context.trace_id, "032x") == "5759e988bd862e3fe1be46a994272793"
    finally:
        propagate.set_global_textmap(before)
    assert not propagation.speaks_xray()


@pytest.mark.parametrize(("running", "headers", "reads_xray", "expected"), [
    (Instrumentation.XRAY, {"traceparent": W3C}, False,
     ("traceparent", "4bf92f3577b34da6a3ce929d0e0e4736")),
    (Instrumentation.XRAY, {"traceparent": W3C, "x-amzn-trace-id": XRAY}, False, None),
    (Instrumentation.NEWRELIC, {"x-amzn-trace-id": XRAY}, False,
     ("X-Amzn-Trace-Id", "5759e988bd862e3fe1be46a994272793")),
    (Instrumentation.NEWRELIC, {"traceparent": W3C}, False, None),
    (Instrumentation.OTEL, {"x-amzn-trace-id": XRAY}, False,
     ("X-Amzn-Trace-Id", "5759e988bd862e3fe1be46a994272793")),
    (Instrumentation.OTEL, {"x-amzn-trace-id": XRAY}, True, None),
    (Instrumentation.OTEL, {}, False, None),
    (Instrumentation.XRAY, {"traceparent": "garbage"}, False, ("traceparent", None)),
])
def test_a_header_the_service_cannot_continue_is_named_with_the_callers_trace(
        running: Instrumentation, headers: dict[str, str], reads_xray: bool,
        expected: tuple[str, str | None] | None) -> None:
    found = propagation.foreign_trace(headers, running, reads_xray=reads_xray)
    assert (None if found is None else (found.header, found.caller_trace_id)) == expected
    if found is not None:
        attributes = found.attributes()
        assert attributes[semconv.TRACE_BREAK] == found.header
        assert attributes[semconv.TRACE_BREAK_REASON].endswith("so a new trace starts here.")


def test_a_traceparent_the_agent_did_not_continue_is_a_break() -> None:
    refused = propagation.refused_traceparent({"traceparent": W3C},
                                              "b71cb3013f5b1747be677535b53b335f")
    assert refused is not None and refused.caller_trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert propagation.refused_traceparent({"traceparent": W3C},
                                           "4bf92f3577b34da6a3ce929d0e0e4736") is None
    assert propagation.refused_traceparent({}, "b71cb3013f5b1747be677535b53b335f") is None


def test_events_carry_the_xray_header_where_the_service_speaks_it_and_traceparent_wins(
) -> None:
    parent = trace.NonRecordingSpan(trace.SpanContext(
        int("5759e988bd862e3fe1be46a994272793", 16), int("53995c3f42cd8ad8", 16),
        is_remote=False, trace_flags=trace.TraceFlags(1)))
    context = trace.set_span_in_context(parent)
    written: dict[str, str] = {}
    propagation.event_propagator().inject(written, context)
    assert set(written) == {"traceparent"}
    before = propagate.get_global_textmap()
    try:
        propagation.install_propagators({"KANSOKU_CATALOG_INSTRUMENTATION": "xray"})
        written = {}
        propagation.event_propagator().inject(written, context)
        assert written["X-Amzn-Trace-Id"] == \
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        # An event with both headers, each naming another trace: traceparent's is read.
        read = propagation.event_propagator().extract({"X-Amzn-Trace-Id": XRAY,
                                                       "traceparent": W3C})
        assert format(trace.get_current_span(read).get_span_context().trace_id, "032x") == \
            "4bf92f3577b34da6a3ce929d0e0e4736"
    finally:
        propagate.set_global_textmap(before)


def test_a_traceparent_is_made_only_of_well_formed_ids() -> None:
    assert propagation.traceparent("5759E988BD862E3FE1BE46A994272793", "53995c3f42cd8ad8",
                                   True) == \
        "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert propagation.traceparent("5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8",
                                   False) == \
        "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"
    # An unsampled X-Ray segment's ids are zeros; a short id is no id.
    assert propagation.traceparent("0" * 32, "53995c3f42cd8ad8", True) is None
    assert propagation.traceparent("5759e988bd862e3fe1be46a994272793", "0" * 16, True) is None
    assert propagation.traceparent("5759e988", "53995c3f42cd8ad8", True) is None
    assert propagation.xray_root_trace_id("1-5759e988-bd862e3fe1be46a994272793") == \
        "5759e988bd862e3fe1be46a994272793"
    assert propagation.xray_root_trace_id("not-an-id") is None
