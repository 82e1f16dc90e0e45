"""Spans in the JSON shapes Jaeger's query service answers with (Grafana's Jaeger data
source reads them)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from kansoku.explorer.common.spans import SpanStatus
from kansoku.explorer.traces.models import (
    JaegerLog,
    JaegerProcess,
    JaegerSpan,
    JaegerTag,
    JaegerTrace,
    TraceSpans,
)
from kansoku.explorer.traces.queries import OTEL_STATUS_CODE


def _tag(key: str, value: Any) -> JaegerTag:
    """An attribute as a Jaeger tag: its type named, lists and maps as JSON text."""
    # An if-chain on the exact types, not a match: a big trace has a million tags, and
    # class patterns cost twice as much.
    kind = type(value)
    if kind is str:
        return {"key": key, "type": "string", "value": value}
    if kind is bool:
        return {"key": key, "type": "bool", "value": value}
    if kind is int:
        return {"key": key, "type": "int64", "value": value}
    if kind is float:
        return {"key": key, "type": "float64", "value": value}
    return {"key": key, "type": "string", "value": json.dumps(value)}


def jaeger_traces(found: TraceSpans, trace_ids: list[str], *, bound: str = ""
                  ) -> list[JaegerTrace]:
    """`found` grouped into traces in the order of `trace_ids`, in the JSON Jaeger's
    query service returns. A trace cut by its answer's bound says so in its
    `warnings`, as Jaeger does with a trace past its `max_trace_size` (`bound` says
    which bound); so does a span that came without its details."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in found.spans:
        grouped[span["trace_id"]].append(span)
    traces: list[JaegerTrace] = []
    for trace_id in trace_ids:
        members = grouped.get(trace_id)
        if not members:
            continue
        processes: dict[str, JaegerProcess] = {}
        process_of: dict[str, str] = {}
        jaeger_spans: list[JaegerSpan] = []
        for span in members:
            service = span["service"]
            if service not in process_of:
                process_of[service] = f"p{len(process_of) + 1}"
                processes[process_of[service]] = {"serviceName": service, "tags": []}
            process = processes[process_of[service]]
            if not process["tags"] and span["resource"]:
                process["tags"] = [_tag(k, v) for k, v in span["resource"].items()]
            tags = [_tag(k, v) for k, v in span["attributes"].items()]
            tags.append(_tag("span.kind", span["kind"]))
            # As Jaeger translates OpenTelemetry's status: `otel.status_code` ERROR or
            # OK (nothing when unset), `error` = true on an error.
            if span["status"] in (SpanStatus.ERROR, SpanStatus.OK):
                tags.append(_tag(OTEL_STATUS_CODE, span["status"].upper()))
            if span["status"] == SpanStatus.ERROR:
                tags.append(_tag("error", True))
            if span["status_message"]:
                tags.append(_tag("otel.status_description", span["status_message"]))
            jaeger_spans.append({
                "traceID": trace_id, "spanID": span["span_id"], "flags": 1,
                "operationName": span["name"],
                "references": ([{"refType": "CHILD_OF", "traceID": trace_id,
                                 "spanID": span["parent_span_id"]}]
                               if span["parent_span_id"] else []),
                "startTime": span["start_ns"] // 1000,
                "duration": span["duration_ns"] // 1000,
                "tags": tags,
                "logs": [JaegerLog(timestamp=event["time_ns"] // 1000, fields=[
                    _tag("event", event["name"]),
                    *(_tag(k, v) for k, v in event["attributes"].items())])
                    for event in span["events"]],
                "processID": process_of[service], "warnings": span["warnings"],
            })
        cut = found.cut_warning(trace_id, len(members), bound)
        traces.append({"traceID": trace_id, "spans": jaeger_spans, "processes": processes,
                       "warnings": [cut] if cut else None})
    return traces
