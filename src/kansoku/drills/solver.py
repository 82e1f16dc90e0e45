"""A solver: finds a drill's answer through the explorer's public API alone, as a learner
could — the proof, run by the tests against a real stack, that a drill can be solved
from what kansoku shows.

It looks, in the window since the drill started, for

1. a fault flag at work: a trace with a span carrying `feature_flag.key` of one of the
   catalogue's flags (`GET /api/traces?tags=…`); the flag's entry in the catalogue —
   docs/faults.md for a learner — names its service and cause;
2. a service that has gone silent: failed client spans calling it (`peer.service`)
   while it sends no span of its own — an outage;
3. otherwise: nothing is wrong.

It never reads the drill, its seed or the stack: only the explorer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from kansoku.drills.evidence import Trace, TraceAnswer, ask
from kansoku.drills.model import NOTHING, STOPPABLE
from kansoku.faults import catalogue
from kansoku.faults.catalogue import FaultCategory
from kansoku.kit import semconv

#: A service with no span of its own in this last stretch counts as silent.
SILENT_SECONDS = 15.0
#: Failed traces read when looking for a silent service.
FAILED_TRACES = 100


@dataclass(frozen=True)
class Finding:
    """What the solver would answer: the service, the cause and the evidence (None and
    `NOTHING` when nothing is wrong), and why."""

    service: str | None
    cause: str
    trace_id: str | None
    why: str


async def _search(explorer: httpx.AsyncClient, since: datetime, *, limit: int,
                  service: str | None = None, tags: dict[str, str] | None = None
                  ) -> list[Trace]:
    params: dict[str, str | int] = {
        "start": int(since.timestamp() * 1_000_000),
        "end": int(datetime.now(UTC).timestamp() * 1_000_000) + 1_000_000, "limit": limit}
    if service:
        params["service"] = service
    if tags:
        params["tags"] = json.dumps(tags)
    answer = await ask(explorer, "/api/traces", "a search of traces", params)
    return TraceAnswer.model_validate_json(answer.content).data


async def solve(explorer: httpx.AsyncClient, since: datetime) -> Finding:
    """The answer the explorer's telemetry since `since` supports."""
    for flag in catalogue.FLAGS.values():
        if flag.service not in STOPPABLE:
            continue  # loadFlood acts on the load generator, not on a service
        found = await _search(explorer, since, limit=1,
                              tags={semconv.FEATURE_FLAG_KEY: flag.name})
        if found:
            return Finding(flag.service, flag.category, found[0].traceID,
                           f"spans carry {semconv.FEATURE_FLAG_KEY}={flag.name}")
    failed = await _search(explorer, since, limit=FAILED_TRACES, tags={"error": "true"})
    called: dict[str, str] = {}  # a service failed calls were made to -> one such trace
    for trace in failed:
        for span in trace.spans:
            peer = span.tag(semconv.PEER_SERVICE)
            if span.failed and isinstance(peer, str) and peer in STOPPABLE:
                called.setdefault(peer, trace.traceID)
    recently = max(since, datetime.now(UTC) - timedelta(seconds=SILENT_SECONDS))
    for peer, trace_id in called.items():
        if not await _search(explorer, recently, limit=1, service=peer):
            return Finding(peer, FaultCategory.OUTAGE, trace_id,
                           f"calls to {peer} fail and it sends no span of its own")
    return Finding(None, NOTHING, None, "no fault flag at work and no service silent")
