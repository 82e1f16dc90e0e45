"""The worker's faults and its queue lag: orderQueueLag holds up order events,
workerMemoryLeak really keeps memory (and frees it when turned off), and the
`kansoku.events.consumer.lag` gauge reports what a JetStream consumer has not
acknowledged yet, read from a real NATS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from kansoku.faults import flagfile
from kansoku.faults.catalogue import FLAG_KINDS
from kansoku.kit import events, semconv
from kansoku.kit.flags import FaultFlags
from kansoku.services.worker.service import LEAK_UNIT_BYTES, ConsumerLag, FaultEffects


def wait_for(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.02)


@pytest.fixture
def effects(tmp_path: Path) -> Iterator[tuple[FaultEffects, Path]]:
    flags_file = tmp_path / "flags.json"
    flagfile.reset(flags_file)
    watcher = FaultFlags(flags_file, "worker", FLAG_KINDS)
    watcher.start()
    yield FaultEffects(watcher), flags_file
    watcher.close()


def switch(effects: FaultEffects, flags_file: Path, name: str, variant: str) -> None:
    flagfile.set_variant(flags_file, name, variant)
    wait_for(lambda: effects.flags.variant(name) == variant)


async def test_queue_lag_holds_up_order_events_only(effects: tuple[FaultEffects, Path]
                                                    ) -> None:
    faults, flags_file = effects
    switch(faults, flags_file, "orderQueueLag", "on")
    started = time.monotonic()
    await faults.before_event("inventory.low_stock")
    assert time.monotonic() - started < 0.1
    with pytest.raises(TimeoutError):  # it waits QUEUE_LAG_SECONDS (5 s): far longer
        await asyncio.wait_for(faults.before_event("order.paid"), 0.5)


async def test_memory_leak_keeps_memory_per_event_and_frees_it_when_off(
        effects: tuple[FaultEffects, Path]) -> None:
    faults, flags_file = effects
    switch(faults, flags_file, "workerMemoryLeak", "10x")
    for _ in range(3):
        await faults.before_event("order.paid")
    assert faults.leaked_bytes == 3 * 10 * LEAK_UNIT_BYTES
    assert sum(len(block) for block in faults.leaked) == faults.leaked_bytes
    switch(faults, flags_file, "workerMemoryLeak", "off")
    wait_for(lambda: faults.leaked_bytes == 0)
    await faults.before_event("order.paid")
    assert faults.leaked == []


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator[Any]:
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    await events.ensure_streams(js)
    yield js
    await connection.close()


async def test_the_lag_gauge_counts_what_a_consumer_has_not_acknowledged(
        jetstream: Any) -> None:
    subject, durable = f"order.lagtest.{uuid.uuid4().hex[:8]}", f"lag-{uuid.uuid4().hex[:8]}"
    reader = InMemoryMetricReader()
    lag = ConsumerLag(MeterProvider(metric_readers=[reader]).get_meter("test"),
                      {durable: subject})
    subscription = await jetstream.pull_subscribe(subject, durable=durable)
    try:
        for number in range(3):
            await jetstream.publish(subject, f"{number}".encode())
        await lag.read_once(jetstream)
        assert lag.lag == {durable: 3}
        (taken,) = await subscription.fetch(1, timeout=2)
        await lag.read_once(jetstream)
        assert lag.lag[durable] == 3, "delivered but not acknowledged still counts"
        await taken.ack_sync()
        await lag.read_once(jetstream)
        assert lag.lag[durable] == 2
        collected = reader.get_metrics_data()
        assert collected is not None
        points = [point for resource in collected.resource_metrics
                  for scope in resource.scope_metrics for metric in scope.metrics
                  if metric.name == semconv.METRIC_QUEUE_LAG
                  for point in metric.data.data_points
                  if isinstance(point, NumberDataPoint)]
        assert [(p.value, dict(p.attributes or {})) for p in points] == [
            (2, {semconv.MESSAGING_CONSUMER: durable, semconv.MESSAGING_DESTINATION: subject})]
    finally:
        await subscription.unsubscribe()
        await jetstream.delete_consumer(events.STREAM, durable)
