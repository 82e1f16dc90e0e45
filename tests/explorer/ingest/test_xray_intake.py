"""The explorer's X-Ray daemon intake, fed by the real AWS X-Ray SDK: a separate process
records a segment (HTTP, an annotated user, metadata, SQL through the SDK's own
SQLAlchemy patch, nested and streamed subsegments, an exception) and sends it to the
explorer's UDP port, where the spans are read back through the span API."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest

from kansoku.explorer.ingest import xray
from kansoku.explorer.ingest.documents import BadDocument
from tests.support import eventually, explorer_with_intakes, free_udp_port, json_lines

#: Records one request's segment with the SDK (sync context: no event loop needed) and
#: prints its trace id. A streaming threshold of 2 makes the SDK send subsegments on
#: their own, before their segment, as it does for a long request.
RECORDING_PROCESS = textwrap.dedent("""
    import sys
    import sqlalchemy
    from aws_xray_sdk.core import patch, xray_recorder

    xray_recorder.configure(service="probe", sampling=False, plugins=(),
                            daemon_address=f"127.0.0.1:{sys.argv[1]}",
                            context_missing="IGNORE_ERROR", streaming_threshold=2)
    patch(["sqlalchemy_core"])
    engine = sqlalchemy.create_engine("sqlite://")
    segment = xray_recorder.begin_segment("probe")
    segment.put_http_meta("url", "http://shop.example/products/7?page=2")
    segment.put_http_meta("method", "GET")
    segment.put_annotation("user_id", "user-42")
    segment.put_metadata("basket", {"items": 3}, "shop")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 1"))
    with xray_recorder.in_subsegment("outer"):
        with xray_recorder.in_subsegment("inner"):
            pass
        with xray_recorder.in_subsegment("inner-two"):
            pass
    try:
        with xray_recorder.in_subsegment("boom"):
            raise ValueError("out of stock")
    except ValueError:
        pass
    segment.put_http_meta("status", 503)
    print(segment.trace_id)
    xray_recorder.end_segment()
""")


def record_segment(port: int) -> str:
    """Run the recording process against `port`; the X-Ray trace id it recorded."""
    done = subprocess.run([sys.executable, "-c", RECORDING_PROCESS, str(port)],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


async def spans_of(url: str, trace_id: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def arrived() -> bool:
        nonlocal found
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.get(f"/api/spans/{trace_id}")
        found = answer.json()["data"]["spans"] if answer.status_code == 200 else []
        return len(found) >= count

    await eventually(arrived, 20, f"{count} spans of trace {trace_id}")
    return found


def test_trace_ids_map_to_their_128_bits_and_back() -> None:
    assert xray.trace_id_of("1-5759e988-bd862e3fe1be46a994272793") == \
        "5759e988bd862e3fe1be46a994272793"
    assert xray.xray_trace_id("5759e988bd862e3fe1be46a994272793") == \
        "1-5759e988-bd862e3fe1be46a994272793"
    with pytest.raises(BadDocument):
        xray.trace_id_of("1-5759e988-short")


async def test_a_segment_from_the_sdk_becomes_spans_with_their_attributes() -> None:
    with explorer_with_intakes() as (url, app):
        xray_trace = record_segment(app.state.settings.xray_port)
        trace_id = xray.trace_id_of(xray_trace)
        spans = await spans_of(url, trace_id, 6)
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"GET /products/7", "SELECT", "outer", "inner", "inner-two",
                            "boom"}
    root = by_name["GET /products/7"]
    # Every span is the segment's service's, the streamed subsegments included.
    assert {span["service"] for span in spans} == {"probe"}
    assert all(span["attributes"]["telemetry.source"] == "xray" for span in spans)
    assert root["kind"] == "server" and root["parent_span_id"] is None
    assert root["status"] == "error" and root["http_status"] == 503
    assert root["user_id"] == "user-42" and root["attributes"]["user_id"] == "user-42"
    assert root["attributes"]["url.full"] == "http://shop.example/products/7?page=2"
    assert root["route"] == "/products/7"
    assert root["attributes"]["aws.xray.metadata.shop"] == {"basket": {"items": 3}}
    assert root["resource"]["telemetry.sdk.name"] == "X-Ray for Python"
    sql = by_name["SELECT"]
    assert sql["kind"] == "client" and sql["parent_span_id"] == root["span_id"]
    assert sql["db_system"] == "sqlite" and sql["db_statement"] == "SELECT 1"
    assert by_name["inner"]["parent_span_id"] == by_name["outer"]["span_id"]
    assert by_name["inner-two"]["parent_span_id"] == by_name["outer"]["span_id"]
    assert by_name["outer"]["kind"] == "internal"
    boom = by_name["boom"]
    assert boom["status"] == "error" and boom["status_message"] == "ValueError: out of stock"
    assert boom["events"][0]["attributes"]["exception.type"] == "ValueError"


async def test_bad_datagrams_are_counted_by_kind_and_the_listener_goes_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    with explorer_with_intakes() as (url, app):
        port = app.state.settings.xray_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in (b"no header at all", b'{"format":"json"}\n{not json',
                             b'{"format":"json"}\n{"id":"00f067aa0ba902b7","trace_id":"x"}',
                             b'{"format":"json"}\n{"id":"00f067aa0ba902b7","trace_id":"x"}'):
                sender.sendto(datagram, ("127.0.0.1", port))
        trace_id = xray.trace_id_of(record_segment(port))
        await spans_of(url, trace_id, 6)
        intake = app.state.intakes.xray
    assert dict(intake.bad) == {
        "no header line": 1, "the document is not JSON": 1,
        "trace id not of the form 1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy": 2}
    logged = [line["message"] for line in json_lines(capsys.readouterr().out)
              if "ignoring bad input" in line["message"]]
    assert len(logged) == 3, logged  # once per kind


async def test_a_port_in_use_is_one_log_line_and_the_explorer_runs_without_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        with explorer_with_intakes(xray_port=port) as (url, _):
            async with httpx.AsyncClient(base_url=url) as http:
                assert (await http.get("/health/live")).status_code == 200
    refused = [line for line in json_lines(capsys.readouterr().out)
               if "X-Ray intake (UDP) not listening" in line["message"]]
    assert len(refused) == 1 and f":{port}" in refused[0]["message"]
    assert refused[0]["level"] == "ERROR"
