"""The OpenTelemetry metrics API answered by a vendor's own way of recording a
measurement, so the services' code stays the same under every approach: each counter,
up-down counter and histogram hands every measurement to one function,
`record(name, unit, amount, attributes)` (X-Ray's EMF writer, New Relic's custom
metrics); observable instruments (gauges read by callback) stay no-ops — neither
vendor's library has a place for them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.metrics import (
    NoOpCounter,
    NoOpHistogram,
    NoOpMeter,
    NoOpMeterProvider,
    NoOpUpDownCounter,
)
from opentelemetry.util.types import Attributes

#: How an approach records one measurement. It must never raise: a metric that cannot
#: be recorded must not fail the request that recorded it.
Record = Callable[[str, str, int | float, Attributes], None]


class _Instrument:
    """What an instrument keeps of its creation: where its measurements go, and the
    name and unit they are recorded with."""

    def __init__(self, record: Record, name: str, unit: str = "",
                 description: str = "") -> None:
        self._record, self.metric_name, self.metric_unit = record, name, unit

    def _measure(self, amount: int | float, attributes: Attributes) -> None:
        self._record(self.metric_name, self.metric_unit, amount, attributes)


class _Counter(_Instrument, NoOpCounter):
    def add(self, amount: int | float, attributes: Attributes = None,
            context: Context | None = None) -> None:
        self._measure(amount, attributes)


class _UpDownCounter(_Instrument, NoOpUpDownCounter):
    def add(self, amount: int | float, attributes: Attributes = None,
            context: Context | None = None) -> None:
        self._measure(amount, attributes)


class _Histogram(_Instrument, NoOpHistogram):
    def record(self, amount: int | float, attributes: Attributes = None,
               context: Context | None = None) -> None:
        self._measure(amount, attributes)


class _Meter(NoOpMeter):
    def __init__(self, record: Record, name: str, version: str | None = None,
                 schema_url: str | None = None) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self._record = record

    def create_counter(self, name: str, unit: str = "", description: str = ""
                       ) -> NoOpCounter:
        return _Counter(self._record, name, unit, description)

    def create_up_down_counter(self, name: str, unit: str = "", description: str = ""
                               ) -> NoOpUpDownCounter:
        return _UpDownCounter(self._record, name, unit, description)

    def create_histogram(self, name: str, unit: str = "", description: str = "",
                         *, explicit_bucket_boundaries_advisory: Sequence[float] | None = None
                         ) -> NoOpHistogram:
        return _Histogram(self._record, name, unit, description)


class RecordingMeterProvider(NoOpMeterProvider):
    """The metrics API, every measurement handed to `record`."""

    def __init__(self, record: Record) -> None:
        self._record = record

    def get_meter(self, name: str, version: str | None = None,
                  schema_url: str | None = None, attributes: Attributes = None) -> NoOpMeter:
        return _Meter(self._record, name, version=version, schema_url=schema_url)
